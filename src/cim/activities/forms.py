"""Forms of the history pages. They only collect and shape input; the schemas and services check the meaning."""

from django import forms
from django.utils.translation import gettext_lazy as _

from cim.activities.models import Interaction, Order, Product
from cim.customers.forms import active_users

DATETIME_INPUT = {"type": "datetime-local"}


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(file, initial) for file in files]


class InteractionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=Interaction.Kind.choices, initial=Interaction.Kind.CALL)
    direction = forms.ChoiceField(label=_("Direction"), choices=Interaction.Direction.choices, required=False)
    occurred_at = forms.DateTimeField(
        label=_("Time"), required=False, widget=forms.DateTimeInput(attrs=DATETIME_INPUT), help_text=_("Empty: now.")
    )
    duration_minutes = forms.IntegerField(label=_("Duration (minutes)"), required=False, min_value=0, max_value=1440)
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False)
    body = forms.CharField(label=_("Details"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    outcome = forms.ChoiceField(label=_("Outcome"), choices=Interaction.Outcome.choices, required=False)
    staff = forms.ModelMultipleChoiceField(
        label=_("Staff present"), queryset=active_users(), required=False, to_field_name="username"
    )
    contacts = forms.CharField(
        label=_("Customer's people present"),
        required=False,
        max_length=1000,
        help_text=_("Names, separated by commas."),
    )
    files = MultipleFileField(label=_("Attachments"), required=False)

    def input_data(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k not in ("files", "staff", "contacts")}
        data["staff"] = [user.username for user in self.cleaned_data["staff"]]
        data["contacts"] = [
            name.strip() for name in self.cleaned_data["contacts"].replace("，", ",").split(",") if name.strip()
        ]
        return {k: v for k, v in data.items() if v is not None}


class OrderForm(forms.Form):
    number = forms.CharField(
        label=_("Order number"), max_length=64, required=False, help_text=_("Empty: a new number.")
    )
    status = forms.ChoiceField(label=_("Status"), choices=Order.Status.choices, initial=Order.Status.PAID)
    ordered_at = forms.DateTimeField(
        label=_("Ordered at"),
        required=False,
        widget=forms.DateTimeInput(attrs=DATETIME_INPUT),
        help_text=_("Empty: now."),
    )
    channel = forms.CharField(label=_("Sales channel"), max_length=50, required=False)
    store = forms.CharField(label=_("Store"), max_length=100, required=False)
    currency = forms.CharField(label=_("Currency"), max_length=3, initial="CNY")
    discount = forms.DecimalField(label=_("Order discount"), min_value=0, decimal_places=2, required=False)

    def input_data(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}


class OrderLineForm(forms.Form):
    sku = forms.CharField(label=_("SKU"), max_length=64, required=False)
    name = forms.CharField(label=_("Product name"), max_length=200, required=False)
    quantity = forms.DecimalField(label=_("Quantity"), min_value=0, decimal_places=3, required=False)
    unit_price = forms.DecimalField(label=_("Unit price"), min_value=0, decimal_places=2, required=False)
    discount = forms.DecimalField(label=_("Discount"), min_value=0, decimal_places=2, required=False)

    def input_data(self) -> dict | None:
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        return data if data.get("sku") or data.get("name") else None


OrderLineFormSet = forms.formset_factory(OrderLineForm, extra=3, max_num=100)


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"), min_value=0.01, decimal_places=2, required=False, help_text=_("Empty: all that is left.")
    )
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ["sku", "name", "category", "price", "currency", "is_active"]
