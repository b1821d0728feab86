from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="hawor",
    version="0.1.0",
    description="World-space MANO hand motion from egocentric video (a clean re-implementation of HaWoR)",
    packages=find_packages(include=["hawor", "hawor.*"]),
    package_data={"hawor": ["configs/*.yaml", "assets/*"]},
    python_requires=">=3.10,<3.13",
    install_requires=requirements,
    extras_require={"ray": ["ray>=2.9,<3"]},  # python -m hawor batch --ray; docs/batch.md
    entry_points={"console_scripts": ["hawor=hawor.__main__:main"]},
)
