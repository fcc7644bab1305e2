"""Irreducible representations of O(3) and their direct sums, without torch.

This module mirrors the data-structure half of ``e3nn.o3`` (version 0.6): the
classes :class:`Irrep`, :class:`MulIr` and :class:`Irreps` follow e3nn's
semantics and string syntax ("16x0e+8x1o+4x2e") but only use the standard
library, so they can be imported where torch is unavailable.  All three are
immutable ``tuple`` subclasses, so they compare equal to (and interoperate
with) the corresponding e3nn objects and to plain tuples such as ``(1, -1)``.

String syntax
-------------
An irrep is written ``<l><parity>`` where ``l`` is a non-negative integer and
``parity`` is ``e`` (even, p=+1), ``o`` (odd, p=-1) or ``y`` (the parity of
the spherical harmonics, p=(-1)**l), e.g. ``"0e"``, ``"1o"``, ``"2y"``.
A direct sum is ``<mul>x<irrep>`` terms joined by ``+``; ``<mul>x`` may be
omitted (multiplicity 1) and spaces are ignored: ``"16x0e + 8x1o + 2e"``.
"""

import itertools
import numbers
import re
from typing import Iterator, List, NamedTuple, Optional

__all__ = ["Irrep", "MulIr", "Irreps"]

_PARITY = {"e": 1, "o": -1}
_IRREP_RE = re.compile(r"\s*([0-9]+)\s*([eoy])\s*", re.ASCII)
_TERM_RE = re.compile(r"\s*(?:([0-9]+)\s*x)?\s*([0-9]+)\s*([eoy])\s*", re.ASCII)
_IRREP_HINT = 'expected "<l><parity>" with parity e, o or y, e.g. "0e", "1o" or "2y"'
_IRREPS_HINT = 'expected terms "<mul>x<l><parity>" joined by "+", e.g. "16x0e+8x1o+4x2e"'


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


class Irrep(tuple):
    """Irreducible representation ``(l, p)`` of O(3): degree ``l >= 0``, parity ``p = +1/-1``.

    Construct with ``Irrep(l, p)``, ``Irrep("1o")``, ``Irrep((l, p))`` or from
    another Irrep (returned unchanged).  Malformed input raises ``ValueError``.
    Equality, hashing and ordering are those of the tuple ``(l, p)``, exactly
    as in e3nn, so ``0o < 0e < 1o < 1e``.

    >>> Irrep("2y"), Irrep(1, 1).dim, list(Irrep("1o") * Irrep("1o"))
    (2e, 3, [0e, 1e, 2e])
    """

    def __new__(cls, l, p=None):
        if p is None:
            if isinstance(l, Irrep):
                return l
            if isinstance(l, str):
                m = _IRREP_RE.fullmatch(l)
                if m is None:
                    raise ValueError(f'cannot parse irrep "{l}": {_IRREP_HINT}')
                l = int(m.group(1))
                p = _PARITY.get(m.group(2), (-1) ** l)
            elif hasattr(l, "l") and hasattr(l, "p"):  # duck-typed irrep, e.g. e3nn's
                l, p = l.l, l.p
            elif isinstance(l, (tuple, list)) and len(l) == 2:
                l, p = l
            else:
                raise ValueError(f"cannot build an Irrep from {l!r}: {_IRREP_HINT}, or Irrep(1, -1)")
        if not _is_int(l) or l < 0:
            raise ValueError(f"Irrep degree l must be a non-negative integer, got {l!r} (e.g. Irrep(1, -1))")
        if _is_int(p) and p in (1, -1):
            return super().__new__(cls, (int(l), int(p)))
        raise ValueError(f"Irrep parity p must be +1 (even) or -1 (odd), got {p!r} (e.g. Irrep(1, -1))")

    @property
    def l(self) -> int:  # noqa: E743
        """Degree ``l`` of the representation."""
        return self[0]

    @property
    def p(self) -> int:
        """Parity ``p``, +1 (even, ``e``) or -1 (odd, ``o``)."""
        return self[1]

    @property
    def dim(self) -> int:
        """Dimension ``2 l + 1``."""
        return 2 * self.l + 1

    def is_scalar(self) -> bool:
        """True iff this is ``0e``."""
        return self.l == 0 and self.p == 1

    def __repr__(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    __str__ = __repr__

    @classmethod
    def iterator(cls, lmax: Optional[int] = None) -> Iterator["Irrep"]:
        """Yield all irreps ordered by ``l``, the parity ``(-1)**l`` first: 0e, 0o, 1o, 1e, ...

        Stops after ``l == lmax``; endless when ``lmax`` is None.
        """
        for l in itertools.count():
            yield cls(l, (-1) ** l)
            yield cls(l, -((-1) ** l))
            if l == lmax:
                return

    def __mul__(self, other) -> Iterator["Irrep"]:
        """Generator of the irreps in ``self (x) other``: l = |l1-l2| .. l1+l2, p = p1*p2."""
        other = Irrep(other)
        p = self.p * other.p
        return (Irrep(l, p) for l in range(abs(self.l - other.l), self.l + other.l + 1))

    def __rmul__(self, mul) -> "Irreps":
        """``3 * Irrep("1e")`` is ``Irreps("3x1e")``."""
        if not _is_int(mul):
            return NotImplemented
        return Irreps([(mul, self)])

    def __add__(self, other) -> "Irreps":
        return Irreps(self) + Irreps(other)

    def __radd__(self, other) -> "Irreps":
        return Irreps(other) + Irreps(self)


class MulIr(tuple):
    """A multiplicity and an irrep, ``(mul, ir)``; ``repr`` is ``"16x1o"``.

    Construct with ``MulIr(16, "1o")`` or ``MulIr((16, ir))``; ``mul`` must be a
    non-negative integer and ``ir`` anything :class:`Irrep` accepts.
    """

    def __new__(cls, mul, ir=None):
        if ir is None:
            if isinstance(mul, MulIr):
                return mul
            if not (isinstance(mul, (tuple, list)) and len(tuple(iter(mul))) == 2):
                raise ValueError(f'cannot build a MulIr from {mul!r}; expected (mul, irrep), e.g. (16, "1o")')
            mul, ir = mul
        if not _is_int(mul) or mul < 0:
            raise ValueError(f'multiplicity must be a non-negative integer, got {mul!r} (e.g. MulIr(16, "1o"))')
        return super().__new__(cls, (int(mul), Irrep(ir)))

    @property
    def mul(self) -> int:
        """Multiplicity (number of copies)."""
        return self[0]

    @property
    def ir(self) -> Irrep:
        """The irrep."""
        return self[1]

    @property
    def dim(self) -> int:
        """Dimension ``mul * ir.dim``."""
        return self.mul * self.ir.dim

    def __repr__(self) -> str:
        return f"{self.mul}x{self.ir}"

    __str__ = __repr__


class _Sort(NamedTuple):
    """Result of :meth:`Irreps.sort`: ``irreps[i] == original[inv[i]]`` and ``p = inverse(inv)``."""

    irreps: "Irreps"
    p: tuple
    inv: tuple


def _parse_term(term: str, text: str) -> MulIr:
    m = _TERM_RE.fullmatch(term)
    if m is None:
        t = term.strip()
        why = "empty term" if not t else "negative multiplicity" if t.startswith("-") else f'bad term "{t}"'
        raise ValueError(f'cannot parse irreps "{text}": {why}; {_IRREPS_HINT}')
    mul = 1 if m.group(1) is None else int(m.group(1))
    return MulIr(mul, Irrep(m.group(2) + m.group(3)))


class Irreps(tuple):
    """Direct sum of irreps: an immutable tuple of :class:`MulIr`, as ``e3nn.o3.Irreps``.

    Accepts a string (``"16x0e+8x1o"``, ``"0e + 1o"``, ``""``), an Irrep, a MulIr,
    None (empty), another Irreps, or an iterable whose items are Irrep, MulIr,
    strings (``"1o"`` or ``"2x1o"``) or pairs ``(mul, ir)`` with ``ir`` an
    Irrep, string or ``(l, p)``.  Malformed input raises ``ValueError`` quoting
    it.  Entries are kept as given: use :meth:`simplify` / :meth:`sort` to
    normalise.  ``repr`` is e3nn's (``"16x0e+8x1o"``; ``""`` when empty).
    """

    def __new__(cls, irreps=None):
        if isinstance(irreps, Irreps):
            return super().__new__(cls, irreps)
        if irreps is None:
            items = []
        elif isinstance(irreps, str):
            items = [] if irreps.strip() == "" else [_parse_term(t, irreps) for t in irreps.split("+")]
        elif isinstance(irreps, (Irrep, MulIr)) or hasattr(irreps, "p"):
            items = [cls._entry(irreps)]
        else:
            try:
                entries = list(irreps)
            except TypeError:
                raise ValueError(f"cannot build Irreps from {irreps!r}; {_IRREPS_HINT}") from None
            items = [cls._entry(x) for x in entries]
        return super().__new__(cls, items)

    @staticmethod
    def _entry(x) -> MulIr:
        if isinstance(x, str):
            return _parse_term(x, x)
        if isinstance(x, Irrep) or hasattr(x, "p"):  # an irrep, possibly duck-typed
            return MulIr(1, x)
        try:
            return MulIr(x)
        except ValueError as e:
            raise ValueError(f"unable to interpret {x!r} as an Irreps entry: {e}") from None

    @classmethod
    def spherical_harmonics(cls, lmax: int, p: int = -1) -> "Irreps":
        """Irreps of the spherical harmonics ``Y^0..Y^lmax``: ``1x0e+1x1o+1x2e+...`` (parity ``p**l``)."""
        return cls([(1, (l, p**l)) for l in range(lmax + 1)])

    @property
    def dim(self) -> int:
        """Total dimension ``sum(mul * (2l+1))``."""
        return sum(mul_ir.dim for mul_ir in self)

    @property
    def num_irreps(self) -> int:
        """Sum of the multiplicities."""
        return sum(mul for mul, _ in self)

    @property
    def ls(self) -> List[int]:
        """The ``l`` of every irrep copy, each repeated ``mul`` times."""
        return [ir.l for mul, ir in self for _ in range(mul)]

    @property
    def lmax(self) -> int:
        """Largest ``l`` among irreps with non-zero multiplicity; ValueError if there is none."""
        if not self.ls:
            raise ValueError("Cannot get lmax of empty Irreps")
        return max(self.ls)

    def is_scalar(self) -> bool:
        """True iff every entry is ``0e`` (vacuously True when empty)."""
        return all(ir.is_scalar() for _, ir in self)

    def slices(self) -> List[slice]:
        """One ``slice(start, stop)`` per entry, locating it in a vector of size ``dim``."""
        bounds = list(itertools.accumulate((m.dim for m in self), initial=0))
        return [slice(a, b) for a, b in zip(bounds, bounds[1:])]

    def simplify(self) -> "Irreps":
        """Merge consecutive equal irreps and drop zero multiplicities (no sorting).

        ``Irreps("1e + 1e + 0e + 1e").simplify()`` is ``2x1e+1x0e+1x1e``.
        """
        out = []
        for mul, ir in self:
            if out and out[-1][1] == ir:
                out[-1] = (out[-1][0] + mul, ir)
            elif mul > 0:
                out.append((mul, ir))
        return Irreps(out)

    def remove_zero_multiplicities(self) -> "Irreps":
        """Drop the entries with ``mul == 0``."""
        return Irreps([mul_ir for mul_ir in self if mul_ir.mul > 0])

    def sort(self) -> _Sort:
        """Stable sort of the entries by irrep; returns ``(irreps, p, inv)`` as e3nn.

        ``irreps[i] == self[inv[i]]`` and ``self[j]`` moved to position ``p[j]``.
        """
        inv = tuple(sorted(range(len(self)), key=lambda i: (self[i].ir, i, self[i].mul)))
        p = [0] * len(inv)
        for i, j in enumerate(inv):
            p[j] = i
        return _Sort(Irreps([self[i] for i in inv]), tuple(p), inv)

    def regroup(self) -> "Irreps":
        """``sort().irreps.simplify()``: one entry per distinct irrep, in order."""
        return self.sort().irreps.simplify()

    def filter(self, keep=None, *, drop=None, lmax: Optional[int] = None) -> "Irreps":
        """Keep the entries matching ``keep``, or drop those matching ``drop``, or those with ``l > lmax``.

        ``keep``/``drop`` may be irreps (string, Irreps, Irrep, list) or a predicate on
        :class:`MulIr`; at most one of the three arguments may be given.
        """
        given = [x is not None for x in (keep, drop, lmax)]
        if sum(given) > 1:
            raise ValueError("give at most one of keep, drop and lmax")
        if lmax is not None:
            return Irreps([m for m in self if m.ir.l <= lmax])
        sel, want = (keep, True) if keep is not None else (drop, False)
        if sel is None:
            return self
        if callable(sel):
            match = sel
        else:
            irs = {m.ir for m in Irreps(sel)}
            match = lambda m: m.ir in irs  # noqa: E731
        return Irreps([m for m in self if bool(match(m)) == want])

    def count(self, ir) -> int:
        """Total multiplicity of ``ir`` (anything :class:`Irrep` accepts)."""
        ir = Irrep(ir)
        return sum(mul for mul, x in self if x == ir)

    def __contains__(self, ir) -> bool:
        """Whether an entry has irrep ``ir`` (even with multiplicity 0, as e3nn)."""
        ir = Irrep(ir)
        return any(x == ir for _, x in self)

    def __getitem__(self, i):
        out = super().__getitem__(i)
        return Irreps(out) if isinstance(i, slice) else out

    def __add__(self, other) -> "Irreps":
        """Concatenation; ``other`` may be anything :class:`Irreps` accepts."""
        return Irreps(tuple(self) + tuple(Irreps(other)))

    def __radd__(self, other) -> "Irreps":
        return Irreps(other) + self

    def __mul__(self, n) -> "Irreps":
        """``irreps * 3``: the entries repeated 3 times (not merged), as e3nn."""
        if isinstance(n, Irreps):
            raise NotImplementedError("Irreps * Irreps is a tensor product; use a tensor product module")
        if not _is_int(n):
            return NotImplemented
        return Irreps(tuple(self) * n)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return "+".join(map(repr, self))

    __str__ = __repr__
