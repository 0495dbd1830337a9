"""Exception groups (Trio nurseries raise them): the plain exceptions inside, however deeply nested."""

from __future__ import annotations


def leaves(group: BaseExceptionGroup) -> list[BaseException]:
    return [leaf for exc in group.exceptions
            for leaf in (leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])]
