"""The one exception the data pipeline raises for bad input files.

Every problem with a researcher's data (a file that will not open, a label map that does not
match its image, undeclared label values ...) becomes a :class:`DataError` that names the file
and says what is wrong in plain words, so the web app can show ``str(error)`` as it is.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A problem with one input file (or the dataset description).

    Attributes:
        path: the file the problem is about (``Path``; may be a folder for layout problems).
        problem: what is wrong, worded for a researcher, without the file name.

    ``str(error)`` is ``"<file name>: <problem>"``, e.g.
    ``"label_003.nii.gz: label values {7} are not declared in dataset.json (declared: 0, 1, 2)"``.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}")

    def __reduce__(self):  # keep the two-argument constructor picklable (Celery results)
        return (type(self), (str(self.path), self.problem))
