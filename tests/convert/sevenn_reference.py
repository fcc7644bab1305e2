"""sevenn's own calculator on structures from an ASE trajectory (exact positions) -> npz (run in its own process: importing
sevenn imports torch_geometric, which replaces torch.index_select and torch.select for the whole process).

``python sevenn_reference.py MODEL STRUCTURES.traj OUT.npz [float32|float64]``; MODEL is a pretrained name
(7net-0, ...) or a checkpoint path, with ``:MODALITY`` for a multi-fidelity one (7net-mf-0:PBE). float64 runs sevenn's model in double precision: its weights cast, its
stored float32 Wigner-3j buffers replaced by e3nn's exact float64 tables (same sign), its graph kept
float64 (sevenn rounds positions and cells to float32) and its float32 one-hot cast on its way in — the peer's math, at float64.
"""
import sys
import warnings

import numpy as np
import torch
from ase.io import read


def as_float64(model):
    from e3nn.o3 import wigner_3j

    torch.set_default_dtype(torch.float64)
    model = model.double()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if "_w3j_" in name:
                l1, l2, l3 = (int(x) for x in name.rsplit("_w3j_", 1)[1].split("_"))
                exact = wigner_3j(l1, l2, l3, dtype=torch.float64)
                buffer.copy_(exact if torch.allclose(buffer, exact, atol=1e-6) else -exact)

    import functools

    import sevenn.util

    # sevenn's graphs round positions and cells to float32 (util.dtype_correct): keep them float64
    sevenn.util.dtype_correct = functools.partial(sevenn.util.dtype_correct, float_dtype=torch.float64)

    def to_double(module, args):
        data = args[0]
        data[module.key_input] = data[module.key_input].double()

    model._modules["onehot_to_feature_x"].register_forward_pre_hook(to_double)  # its float32 one-hot
    return model


def main(model: str, structures: str, out: str, dtype: str = "float32") -> None:
    warnings.filterwarnings("ignore")
    from sevenn.calculator import SevenNetCalculator

    model, _, modality = model.partition(":")
    calc = SevenNetCalculator(model, device="cpu", modal=modality or None)
    if dtype == "float64":
        calc.model = as_float64(calc.model)
    results = {}
    for n, atoms in enumerate(read(structures, index=":")):
        atoms.calc = calc
        results[f"energy_{n}"] = np.float64(atoms.get_potential_energy())
        results[f"energies_{n}"] = np.asarray(atoms.get_potential_energies(), dtype=np.float64)
        results[f"forces_{n}"] = np.asarray(atoms.get_forces(), dtype=np.float64)
        if atoms.pbc.all():
            results[f"stress_{n}"] = np.asarray(atoms.get_stress(), dtype=np.float64)
    results["dtype"] = np.array(str(next(calc.model.parameters()).dtype))
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
