"""Unique component names in the OpenAPI schema.

django-ninja names a component after its class alone and merges every operation's definitions into one table, so
classes that share a name (the `Status` of orders, tickets and campaigns; two `ProductOut`s) would all point at
whichever came last, and a client generated from the schema would read tickets with the orders' statuses. Here the
first class keeps the short name and any other class of that name is named with what holds it: `CampaignStatus`,
`MiningApiRuleOut`.
"""

from typing import ClassVar

from ninja.schema import NinjaGenerateJsonSchema
from pydantic.json_schema import DefsRef


def _camel(part: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in part.split("_"))


class UniqueNamesJsonSchema(NinjaGenerateJsonSchema):
    # short name → the class (module and qualified name) it stands for, across every operation of the process
    owners: ClassVar[dict[str, str]] = {}

    def get_defs_ref(self, core_mode_ref):
        defs_ref = super().get_defs_ref(core_mode_ref)
        # pydantic's choices, first free one wins: name, name-mode, module.qualname, module.qualname-mode, …
        choices = self._prioritized_defsref_choices[defs_ref]
        core_ref = core_mode_ref[0].rsplit(":", 1)[0]
        if "[" in core_ref:  # generics keep pydantic's names
            return defs_ref
        name = choices[0]
        holders = core_ref.split(".")[:-1]
        qualified = name
        # The short name, else with the nearest holder (Campaign.Status → CampaignStatus), else the next …
        for depth in range(len(holders) + 1):
            qualified = DefsRef("".join(map(_camel, holders[len(holders) - depth :])) + name)
            if self.owners.setdefault(qualified, core_ref) == core_ref:
                break
        choices[:2] = [qualified, DefsRef(f"{qualified}{choices[1][len(name) :]}")]
        return defs_ref
