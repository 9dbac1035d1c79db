"""Distinct real pictures installable from package registries, for measuring dedup's false matches.

Sources, each optional (``available`` lists what this machine has; see docs/dedup-index.md for
what each holds and their licences):

- Debian's desktop wallpaper packages (``apt-get install`` the names in :data:`DEBIAN_PACKAGES`):
  mate-backgrounds, ukui-wallpapers, lomiri-wallpapers (three releases), gnome-backgrounds and
  plasma-workspace-wallpapers. Photographs (flowers, elephants, meadows, dunes, sunsets, a
  dragonfly, a bridge...) and illustrations; a picture shipped in several sizes or as a light and
  a dark variant counts once (its largest, light file).
- opencv-doc's sample images (``/usr/share/doc/opencv-doc/examples/data``): the photographs of
  :data:`OPENCV_PHOTOS`, one of each stereo or before/after pair.
- scikit-image's bundled data (the ``bench`` extra): :data:`SKIMAGE_PHOTOS`.

framesift_dev.falsematches hashes them as framesift hashes a photo.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEBIAN_PACKAGES = (
    "mate-backgrounds",
    "ukui-wallpapers",
    "lomiri-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "gnome-backgrounds",
    "plasma-workspace-wallpapers",
    "opencv-doc",
)
BACKGROUNDS = Path("/usr/share/backgrounds")  # mate, ukui, lomiri, gnome
PLASMA = Path("/usr/share/wallpapers")  # plasma: {name}/contents/images/{W}x{H}.{ext}
OPENCV = Path("/usr/share/doc/opencv-doc/examples/data")
# opencv-doc's photographs, one of each pair of views of one scene (left01/right01, aloeL/aloeR,
# leuvenA/leuvenB, graf1/graf3, box/box_in_scene...): the pairs are the same scene, not distinct.
OPENCV_PHOTOS = (
    "aero1.jpg",
    "aloeL.jpg",
    "apple.jpg",
    "baboon.jpg",
    "basketball1.png",
    "box_in_scene.png",
    "building.jpg",
    "butterfly.jpg",
    "fruits.jpg",
    "graf1.png",
    "home.jpg",
    "left01.jpg",
    "leuvenA.jpg",
    "lena.jpg",
    "messi5.jpg",
    "orange.jpg",
    "rubberwhale1.png",
    "squirrel_cls.jpg",
    "stuff.jpg",
    "ela_original.jpg",
    "licenseplate_motion.jpg",
)
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)
# The wallpapers that are photographs besides mate's nature folder (looked at on a contact sheet;
# the others are drawings, renders and gradients). opencv-doc's and scikit-image's listed pictures
# all are.
WALLPAPER_PHOTOGRAPHS = frozenset(
    {
        "Bridge_by_Sander_Klootwijk",
        "Dragonfly_by_Bolly",
        "Kleiber_by_Lukas_Baubkus",
        "Picture_0B_by_freespace",
        "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede",
        "aitzgorri_by_Aitzol_Berasategi",
        "analogpattern_by_Peter_Nerlich",
        "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi",
        "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi",
        "ColdRipple",
        "ColorfulCups",
        "DarkestHour",
        "EveningGlow",
        "FallenLeaf",
        "Grey",
        "Kite",
        "OneStandsOut",
        "Path",
        "Volna",
        "summer_1am",
    }
)
_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}
_SIZE_SUFFIX = re.compile(r"_\d+x\d+$")  # Elephants_3840x2160.jpg: a size of Elephants.jpg
_DARK_SUFFIX = re.compile(r"-d$")  # gnome's adwaita-d.webp: the dark variant of adwaita-l


@dataclass(frozen=True)
class RealImage:
    source: str  # the package that ships it
    name: str  # unique within the set
    path: Path

    @property
    def photograph(self) -> bool:
        return (
            self.source in ("opencv-doc", "scikit-image")
            or self.name.startswith("mate/nature/")
            or self.name in WALLPAPER_PHOTOGRAPHS
        )


def _pictures(root: Path) -> Iterator[Path]:
    if root.is_dir():
        yield from sorted(p for p in root.rglob("*") if p.suffix.lower() in _EXTENSIONS)


def _backgrounds() -> Iterator[RealImage]:
    chosen: dict[str, Path] = {}
    for path in _pictures(BACKGROUNDS):
        if _DARK_SUFFIX.search(path.stem):
            continue
        key = str(path.parent.relative_to(BACKGROUNDS) / _SIZE_SUFFIX.sub("", path.stem))
        if key not in chosen or path.stat().st_size > chosen[key].stat().st_size:
            chosen[key] = path
    for key, path in sorted(chosen.items()):
        yield RealImage("backgrounds", key, path)


def _plasma() -> Iterator[RealImage]:
    if not PLASMA.is_dir():
        return
    for folder in sorted(PLASMA.iterdir()):
        images = list(_pictures(folder / "contents" / "images"))
        if images:
            yield RealImage("plasma-workspace-wallpapers", folder.name, max(images, key=_area))


def _area(path: Path) -> int:
    width, _, height = path.stem.partition("x")
    return int(width) * int(height) if width.isdigit() and height.isdigit() else 0


def _listed(source: str, folder: Path, names: tuple[str, ...]) -> Iterator[RealImage]:
    for name in names:
        if (folder / name).is_file():
            yield RealImage(source, f"{source}/{name}", folder / name)


def skimage_data() -> Path | None:
    try:
        import skimage
    except ImportError:
        return None
    return Path(skimage.__file__).parent / "data"


def available() -> list[RealImage]:
    """Every distinct picture of the sources installed here."""
    images = [*_backgrounds(), *_plasma(), *_listed("opencv-doc", OPENCV, OPENCV_PHOTOS)]
    if (data := skimage_data()) is not None:
        images.extend(_listed("scikit-image", data, SKIMAGE_PHOTOS))
    return images


def missing() -> str | None:
    """What to install when no source is here (for a benchmark or test to say why it skips)."""
    if available():
        return None
    return (
        "no real pictures installed: apt-get install "
        + " ".join(DEBIAN_PACKAGES)
        + " (and/or pip install -e .[bench] for scikit-image's)"
    )
