"""bench/RESULTS.md holds one section per benchmark; each run replaces its own section and keeps the others."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# Benchmark results\n\nEach benchmark of `make bench` writes its own section, with its machine and date."


def write_section(heading: str, lines: list[str], results: Path = RESULTS) -> None:
    """Replace the `## heading` section of `results` with `lines` (or append it)."""
    text = results.read_text() if results.exists() else TITLE + "\n"
    head, *sections = text.split("\n## ")
    new = heading + "\n\n" + "\n".join(lines).strip() + "\n"
    headings = [s.split("\n", 1)[0].strip() for s in sections]
    if heading in headings:  # in its place, so that the file keeps its order
        sections[headings.index(heading)] = new
    else:
        sections.append(new)
    results.write_text("\n## ".join([head.rstrip() + "\n", *(s.rstrip() + "\n" for s in sections)]))
