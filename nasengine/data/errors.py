"""The one exception the data pipeline raises for bad input files.

Every problem with a researcher's data (a file that will not open, a label map that does not
match its image, undeclared label values ...) becomes a :class:`DataError` that names the file
and says what is wrong in plain words, so the web app can show ``str(error)`` as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

#: One path segment: anything but separators, whitespace, quotes and brackets.
_SEGMENT = r"[^\s'\"()\[\]<>,;:/\\]+"
#: An absolute POSIX path of at least two segments, not part of a word, a relative path
#: (``./imagesTs/x``) or a URL (``http://...``).
_ABSOLUTE_PATH = re.compile(rf"(?<![\w.:/~-])(?:/{_SEGMENT}){{2,}}/?")


def scrub_paths(text: str) -> str:
    """Replace every absolute server path in ``text`` by its last component.

    Library messages (nibabel, zlib, OSError) name the files they were given, and those are
    server paths (MEDIA_ROOT, /tmp upload files) that must not reach a user:
    ``"Cannot work out file type of \"/srv/media/x/upload.nii\""`` becomes
    ``"Cannot work out file type of \"upload.nii\""``.
    """
    return _ABSOLUTE_PATH.sub(lambda m: m.group().rstrip("/").rsplit("/", 1)[-1], str(text))


class DataError(ValueError):
    """A problem with one input file (or the dataset description).

    Attributes:
        path: the file the problem is about (``Path``; may be a folder for layout problems).
        problem: what is wrong, worded for a researcher, without the file name.

    ``str(error)`` is ``"<file name>: <problem>"``, e.g.
    ``"label_003.nii.gz: label values {7} are not declared in dataset.json (declared: 0, 1, 2)"``.
    ``problem`` never holds a server path (see :func:`scrub_paths`): it is shown to users.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = scrub_paths(problem)
        super().__init__(f"{self.path.name}: {problem}")

    def __reduce__(self):  # keep the two-argument constructor picklable (Celery results)
        return (type(self), (str(self.path), self.problem))
