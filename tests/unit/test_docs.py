"""The docs that are generated from the code are up to date."""

from framesift_dev import configdoc


def test_the_configuration_page_is_generated_from_the_settings():
    assert configdoc.PAGE.read_text() == configdoc.render(), "run scripts/docs"


def _layout_paths() -> set[str]:
    """The files the architecture page's Layout section names, braces expanded."""
    import re
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    layout = page[page.index("## Layout") :]
    named: set[str] = set()
    for token in re.findall(r"`([\w/{},.<>*-]+\.(?:py|sql))`", layout):
        match = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", token)
        parts = match.group(2).split(",") if match else [""]
        for part in parts:
            named.add(f"{match.group(1)}{part}{match.group(3)}" if match else token)
    return named


def test_the_layout_names_every_module_of_the_package_and_only_modules_that_exist():
    from pathlib import Path

    repo = Path(__file__).parents[2]
    package = repo / "shared" / "framesift"
    named = _layout_paths()
    for path in named:
        if "<" in path or "*" in path:
            continue
        assert (package / path).exists() or (repo / path).exists(), f"{path} is named, not there"
    modules = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    }
    assert modules - named == set(), "name these in docs/architecture.md's Layout"
