"""Copy the precompiled GOV.UK Frontend and MoJ Frontend assets out of node_modules into
triage/web/static (generated, git-ignored), the folder that triage.web.assets serves.

    python -m triage.web.build_assets        (make assets runs `npm ci` first)

Layout written:
    static/govuk-frontend.min.css, .min.js   (the JS is an ES module)
    static/moj-frontend.min.css, .min.js     (MoJ styles only: load after govuk-frontend)
    static/assets/fonts/, static/assets/images/, static/assets/manifest.json
    static/build.json                        (package versions and a content hash for ?v=)

Both CSS files refer to `/assets/fonts/...` and `/assets/images/...`, so the app serves
static/assets at /assets; both packages' images share one folder (no name clashes; a clash
stops the build). Every url() in the copied CSS is checked to name a copied file.

Standard library only and no project imports: it runs before the project is installed. The new
folder is built beside the old one and swapped in, so a failed build leaves the old one whole.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = Path(__file__).resolve().parent / "static"

GOVUK = Path("govuk-frontend/dist/govuk")
MOJ = Path("@ministryofjustice/frontend/moj")

# (source under node_modules, destination under static). The source maps come along so that
# a browser's developer tools find them (the min files name them) instead of a 404.
FILES = [
    (GOVUK / "govuk-frontend.min.css", "govuk-frontend.min.css"),
    (GOVUK / "govuk-frontend.min.css.map", "govuk-frontend.min.css.map"),
    (GOVUK / "govuk-frontend.min.js", "govuk-frontend.min.js"),
    (GOVUK / "govuk-frontend.min.js.map", "govuk-frontend.min.js.map"),
    (GOVUK / "assets/manifest.json", "assets/manifest.json"),
    (MOJ / "moj-frontend.min.css", "moj-frontend.min.css"),
    (MOJ / "moj-frontend.min.css.map", "moj-frontend.min.css.map"),
    (MOJ / "moj-frontend.min.js", "moj-frontend.min.js"),
    (MOJ / "moj-frontend.min.js.map", "moj-frontend.min.js.map"),
]
# Folders whose files are merged into one destination folder.
FOLDERS = [
    (GOVUK / "assets/fonts", "assets/fonts"),
    (GOVUK / "assets/images", "assets/images"),
    (MOJ / "assets/images", "assets/images"),
]
# The service's own stylesheet, kept in the repository (not in a package).
OWN = [(Path(__file__).resolve().parent / "styles" / "app.css", "app.css")]
PACKAGES = ["govuk-frontend", "@ministryofjustice/frontend"]
CSS = ["govuk-frontend.min.css", "moj-frontend.min.css", "app.css"]
# What the served pages load: its hash is the version token for their links.
VERSIONED = [
    "govuk-frontend.min.css",
    "govuk-frontend.min.js",
    "moj-frontend.min.css",
    "moj-frontend.min.js",
    "app.css",
]

URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


class BuildError(Exception):
    pass


def missing_sources(node_modules: Path) -> list[Path]:
    wanted = [src for src, _ in FILES] + [src for src, _ in FOLDERS]
    return [node_modules / src for src in wanted if not (node_modules / src).exists()]


def package_version(node_modules: Path, name: str) -> str:
    manifest = json.loads((node_modules / name / "package.json").read_text(encoding="utf-8"))
    return str(manifest["version"])


def copy_into(out: Path, node_modules: Path) -> None:
    for src, dest in [*((node_modules / s, d) for s, d in FILES), *OWN]:
        target = out / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    for src_dir, dest_dir in FOLDERS:
        for src in sorted((node_modules / src_dir).rglob("*")):
            if not src.is_file():
                continue
            target = out / dest_dir / src.relative_to(node_modules / src_dir)
            if target.exists() and target.read_bytes() != src.read_bytes():
                raise BuildError(
                    f"{target.relative_to(out)} comes from two packages with different "
                    f"contents (the second is {src}): the /assets folder cannot hold both"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


def unresolved_urls(out: Path) -> list[str]:
    """Every url() in the copied CSS must name a file the app will serve."""
    problems = []
    for name in CSS:
        for url in URL.findall((out / name).read_text(encoding="utf-8")):
            if url.startswith("data:"):
                continue
            path = url.split("?")[0].split("#")[0]
            if not path.startswith("/assets/"):
                problems.append(f"{name}: url({url}) is not under /assets/")
            elif not (out / path.lstrip("/")).is_file():
                problems.append(f"{name}: url({url}) names no copied file")
    return problems


def build(node_modules: Path = ROOT / "node_modules", static: Path = STATIC) -> dict[str, str]:
    if not node_modules.is_dir():
        raise BuildError(
            f"{node_modules} is missing: the front-end packages are not installed. Run "
            "`make assets` (it runs `npm ci`, which needs Node.js and npm, then this script)"
        )
    missing = missing_sources(node_modules)
    if missing:
        listing = "\n  ".join(str(path) for path in missing)
        raise BuildError(
            f"files missing from {node_modules}:\n  {listing}\nRun `make assets` (`npm ci` "
            "installs the versions package-lock.json pins; these paths are where those "
            "versions keep them)"
        )
    building = static.with_name(static.name + ".building")
    old = static.with_name(static.name + ".old")
    for leftover in (building, old):
        shutil.rmtree(leftover, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        copy_into(building, node_modules)
        problems = unresolved_urls(building)
        if problems:
            raise BuildError(
                "the CSS refers to files that were not copied:\n  " + "\n  ".join(problems)
            )
        digest = hashlib.sha256()
        for name in VERSIONED:
            digest.update((building / name).read_bytes())
        info = {name: package_version(node_modules, name) for name in PACKAGES}
        info["version"] = digest.hexdigest()[:12]
        (building / "build.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if static.exists():
        static.rename(old)
    building.rename(static)
    shutil.rmtree(old, ignore_errors=True)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--node-modules", type=Path, default=ROOT / "node_modules")
    parser.add_argument("--out", type=Path, default=STATIC)
    args = parser.parse_args(argv)
    try:
        info = build(args.node_modules, args.out)
    except BuildError as error:
        print(f"build_assets: {error}", file=sys.stderr)
        return 1
    files = sum(1 for path in args.out.rglob("*") if path.is_file())
    versions = ", ".join(f"{name} {info[name]}" for name in PACKAGES)
    print(f"build_assets: {files} files in {args.out} ({versions}; version {info['version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
