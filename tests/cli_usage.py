"""What the tests of command-line entry points share: a usage error exits with status 2 and explains itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest


def usage_error(main: Callable[[Sequence[str]], object], argv: Sequence[str], capsys) -> str:
    """Run ``main(argv)``, which must stop with argparse's usage status 2; returns what it wrote to stderr."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == 2
    return capsys.readouterr().err
