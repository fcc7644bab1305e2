"""Tests for ``equiforce.algebra.irreps``: behaviour must match ``e3nn.o3`` (0.6).

The module is loaded straight from its file so these tests do not depend on the
package ``__init__`` files.
"""

import copy
import doctest
import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

o3 = pytest.importorskip("e3nn.o3")

_PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
_MODULE_PATH = _PYTHON_DIR / "equiforce" / "algebra" / "irreps.py"


def _load():
    spec = importlib.util.spec_from_file_location("_equiforce_irreps_under_test", _MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # needed for pickling
    spec.loader.exec_module(module)
    return module


irreps_mod = _load()
Irrep, MulIr, Irreps = irreps_mod.Irrep, irreps_mod.MulIr, irreps_mod.Irreps

IRREPS_STRINGS = [
    "",
    "   ",
    "0e",
    "1o",
    "1y",
    "2y",
    "16x0e+8x1o+4x2e",
    "0e + 1o",
    " 16x0e + 8x1o ",
    "1 x 1o",
    "100x0e + 50x1e + 0x2e",
    "1e + 1e + 0e + 1e",
    "2o + 1e + 0e + 1e",
    "0x0e+3x1o+0x1o+2x1o+1x0o+5x3e",
    "3x2e+2x2o+1x1o+1x1e+0o+0e+7x2e",
    "10x11o + 3x10e + 0x4y",
    "001x01o",
]

IRREP_STRINGS = ["0e", "0o", "1e", "1o", "2y", "3y", " 4e ", "11o", "0y"]


@pytest.mark.parametrize("s", IRREP_STRINGS)
def test_irrep_parse_matches_e3nn(s):
    ours, ref = Irrep(s), o3.Irrep(s)
    assert (ours.l, ours.p, ours.dim) == (ref.l, ref.p, ref.dim)
    assert repr(ours) == repr(ref) == str(ours)
    assert ours == ref and hash(ours) == hash(ref)
    assert ours.is_scalar() == ref.is_scalar()


def test_irrep_constructors_and_immutability():
    ir = Irrep(1, -1)
    assert Irrep("1o") == Irrep((1, -1)) == Irrep([1, -1]) == ir == (1, -1)
    assert Irrep(ir) is ir
    assert Irrep(o3.Irrep("2e")) == Irrep(2, 1)
    with pytest.raises(AttributeError):
        ir.l = 3
    assert pickle.loads(pickle.dumps(ir)) == ir and copy.deepcopy(ir) == ir


def test_irrep_ordering_matches_e3nn():
    names = [f"{l}{p}" for l in range(4) for p in "eo"]
    ours = [repr(x) for x in sorted(Irrep(n) for n in names)]
    ref = [repr(x) for x in sorted(o3.Irrep(n) for n in names)]
    assert ours == ref
    assert Irrep("0o") < Irrep("0e") < Irrep("1o") < Irrep("1e")


@pytest.mark.parametrize("lmax", [0, 1, 3])
def test_irrep_iterator(lmax):
    assert [repr(x) for x in Irrep.iterator(lmax)] == [repr(x) for x in o3.Irrep.iterator(lmax)]


def test_irrep_iterator_unbounded():
    it = Irrep.iterator()
    assert [repr(next(it)) for _ in range(6)] == ["0e", "0o", "1o", "1e", "2e", "2o"]


@pytest.mark.parametrize("a", ["0e", "1o", "2e", "3o", "1e"])
@pytest.mark.parametrize("b", ["0o", "1o", "2e", "4o"])
def test_irrep_product_matches_e3nn(a, b):
    ours = [repr(x) for x in Irrep(a) * Irrep(b)]
    assert ours == [repr(x) for x in o3.Irrep(a) * o3.Irrep(b)]
    assert [repr(x) for x in Irrep(a) * b] == ours


def test_irrep_arithmetic():
    assert repr(3 * Irrep("1e")) == repr(3 * o3.Irrep("1e")) == "3x1e"
    assert isinstance(3 * Irrep("1e"), Irreps)
    assert repr(Irrep("1o") + Irrep("2o")) == repr(o3.Irrep("1o") + o3.Irrep("2o"))
    assert repr(Irrep("1o") + "2x0e") == "1x1o+2x0e"


@pytest.mark.parametrize(
    "bad", ["1x", "-1e", "1q", "", "e", "1", "1.5e", "1ee", "x1o", "1x1o", None, 1.0, (1,), (1, 2, 3)]
)
def test_irrep_malformed(bad):
    with pytest.raises(ValueError) as err:
        Irrep(bad)
    assert "1o" in str(err.value)  # shows a valid example
    if isinstance(bad, str):
        assert f'"{bad}"' in str(err.value)


@pytest.mark.parametrize("l, p", [(-1, 1), (1, 0), (1, 2), (1.0, 1), ("1", 1), (True, 1), (1, "e")])
def test_irrep_bad_l_or_p(l, p):
    with pytest.raises(ValueError, match="Irrep"):
        Irrep(l, p)


def test_mulir():
    m = MulIr(16, "1o")
    assert (m.mul, m.ir, m.dim, repr(m)) == (16, Irrep("1o"), 48, "16x1o")
    assert MulIr((16, (1, -1))) == m == o3.Irreps("16x1o")[0]
    assert MulIr(m) is m
    for bad in [(-1, "1o"), (1.5, "1o"), (1, "1q")]:
        with pytest.raises(ValueError):
            MulIr(*bad)
    with pytest.raises(ValueError):
        MulIr((1, 2, 3))


def _same(ours, ref):
    assert isinstance(ours, Irreps)
    assert repr(ours) == repr(ref) == str(ours)
    assert ours == ref
    assert all(isinstance(m, MulIr) and isinstance(m.ir, Irrep) for m in ours)


@pytest.mark.parametrize("s", IRREPS_STRINGS)
def test_irreps_matches_e3nn(s):
    ours, ref = Irreps(s), o3.Irreps(s)
    _same(ours, ref)
    assert ours.dim == ref.dim
    assert ours.num_irreps == ref.num_irreps
    assert ours.ls == ref.ls
    if ref.ls:
        assert ours.lmax == ref.lmax
    else:
        with pytest.raises(ValueError):
            ours.lmax
    assert ours.slices() == ref.slices()
    _same(ours.simplify(), ref.simplify())
    _same(ours.remove_zero_multiplicities(), ref.remove_zero_multiplicities())
    _same(ours.regroup(), ref.regroup())
    s_ours, s_ref = ours.sort(), ref.sort()
    _same(s_ours.irreps, s_ref.irreps)
    assert s_ours.p == s_ref.p and s_ours.inv == s_ref.inv
    assert tuple(s_ours) == (s_ours.irreps, s_ours.p, s_ours.inv)
    for ir in ["0e", "0o", "1o", "1e", "2e", "3e"]:
        assert ours.count(ir) == ref.count(ir)
        assert (ir in ours) == (ir in ref)
    for n in [0, 1, 3]:
        _same(ours * n, ref * n)
        _same(n * ours, n * ref)
    for sl in [slice(None), slice(1, None), slice(None, -1), slice(None, None, 2)]:
        _same(ours[sl], ref[sl])
    _same(ours + "2x3o", ref + "2x3o")
    _same(ours + ours, ref + ref)
    # round trips through repr and through e3nn
    _same(Irreps(repr(ours)), ref)
    _same(Irreps(ref), ref)
    assert repr(o3.Irreps(ours)) == repr(ref)
    assert pickle.loads(pickle.dumps(ours)) == ours and copy.deepcopy(ours) == ours


def test_irreps_from_sequences():
    ref = o3.Irreps("2x0e+1x1o+3x2e+1x1e+4x0o")
    items = [(2, "0e"), Irrep("1o"), (3, (2, 1)), "1e", MulIr(4, "0o")]
    _same(Irreps(items), ref)
    _same(Irreps(Irreps(items)), ref)
    _same(Irreps(x for x in items), ref)
    _same(Irreps(Irrep("1o")), o3.Irreps(o3.Irrep("1o")))
    _same(Irreps(MulIr(3, "1o")), o3.Irreps("3x1o"))
    _same(Irreps(["2x1o", "0e"]), o3.Irreps("2x1o+0e"))
    _same(Irreps([o3.Irrep("1o"), (2, o3.Irrep("2e"))]), o3.Irreps("1o+2x2e"))
    _same(Irreps(None), o3.Irreps())
    _same(Irreps([]), o3.Irreps([]))
    _same(Irreps(Irrep("1o") * Irrep("1o")), o3.Irreps(o3.Irrep("1o") * o3.Irrep("1o")))


def test_irreps_arithmetic_extras():
    assert repr("0e" + Irreps("1o")) == "1x0e+1x1o"
    assert repr([(2, "1e")] + Irreps("1o")) == "2x1e+1x1o"
    assert repr((Irreps("2x1e") * 3).simplify()) == "6x1e"
    with pytest.raises(NotImplementedError):
        Irreps("1o") * Irreps("1o")
    with pytest.raises(TypeError):
        Irreps("1o") * 1.5
    assert isinstance(Irreps("1o+2e")[0], MulIr)


@pytest.mark.parametrize("lmax", [0, 1, 4])
@pytest.mark.parametrize("p", [-1, 1])
def test_spherical_harmonics(lmax, p):
    _same(Irreps.spherical_harmonics(lmax, p=p), o3.Irreps.spherical_harmonics(lmax, p=p))
    _same(Irreps.spherical_harmonics(lmax), o3.Irreps.spherical_harmonics(lmax))


def test_is_scalar():
    assert Irreps("3x0e+0e").is_scalar() and Irreps("").is_scalar()
    assert not Irreps("3x0e+0o").is_scalar() and not Irreps("1e").is_scalar()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(keep=["0e", "1e"]),
        dict(keep=["0o"]),
        dict(keep=o3.Irrep("2e")),
        dict(drop=["2e", "1e"]),
        dict(drop=["1e"]),
        dict(lmax=1),
        dict(lmax=0),
        dict(),
    ],
)
def test_filter_matches_e3nn(kwargs):
    s = "1e + 2e + 0e + 3x1o + 2x1e"
    _same(Irreps(s).filter(**kwargs), o3.Irreps(s).filter(**kwargs))


def test_filter_irreps_strings_follow_e3nn_docs():
    # e3nn 0.6's code mishandles Irreps/str arguments (Irrep(_MulIr) returns an int);
    # we follow the behaviour its docstring documents.
    x = Irreps("1e + 2e + 0e")
    assert repr(x.filter(keep="2e + 2x1e")) == "1x1e+1x2e"
    assert repr(x.filter(drop="2e + 2x1e")) == "1x0e"
    assert repr(x.filter(keep=Irreps("0e"))) == "1x0e"
    assert repr(x.filter(keep=MulIr(3, "0e"))) == "1x0e"


def test_filter_callable_and_conflicts():
    x = Irreps("1e + 2e + 0e")
    assert repr(x.filter(keep=lambda m: m.ir.l == 2)) == "1x2e"
    assert repr(x.filter(drop=lambda m: m.ir.l == 2)) == "1x1e+1x0e"
    assert repr(x.filter(keep=Irrep("0e"))) == "1x0e"
    with pytest.raises(ValueError):
        x.filter(keep="0e", drop="1e")


@pytest.mark.parametrize(
    "bad", ["16x", "x1o", "3z", "1x1o++2e", "ax0e", "-1x0e", "1x0e+-2x1o", "1o+", "+1o", "1x2x0e", "1xo", "16x1.5e"]
)
def test_irreps_malformed_string(bad):
    with pytest.raises(ValueError) as err:
        Irreps(bad)
    msg = str(err.value)
    assert f'"{bad}"' in msg  # quotes the bad text
    assert "16x0e+8x1o+4x2e" in msg  # shows a valid example
    with pytest.raises(ValueError):
        o3.Irreps(bad)  # e3nn rejects it too


@pytest.mark.parametrize("bad", [[(-1, "1o")], [(1.5, "1o")], [(1, "1q")], [5], [(1, 2, 3)], 5])
def test_irreps_malformed_sequence(bad):
    with pytest.raises(ValueError):
        Irreps(bad)


def test_docstring_examples():
    assert doctest.testmod(irreps_mod, raise_on_error=True).failed == 0


def test_import_does_not_pull_torch():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('irreps', {str(_MODULE_PATH)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "assert m.__all__ == ['Irrep', 'MulIr', 'Irreps']\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'e3nn'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
