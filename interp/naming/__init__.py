"""Zero-shot colour naming (paper experiments 1-5): `naming()` runs the step into RUN/naming/."""

from interp.naming.answers import Naming, open_naming
from interp.naming.experiments import EXPERIMENTS
from interp.naming.step import naming

__all__ = ["EXPERIMENTS", "Naming", "naming", "open_naming"]
