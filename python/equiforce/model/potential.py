"""EquiForceModel: NequIP-style E(3)-equivariant message passing on equiforce's operators.

Energy is a sum of per-atom energies (invariant); forces are -dE/dr and the virial comes from the
derivative with respect to a homogeneous strain, both by autograd (:func:`evaluate`).
"""
from typing import Dict, List, Optional

import torch

from ..algebra import Irreps
from ..nn import BesselBasis, Interaction, PolynomialCutoff, hidden_irreps
from ..o3 import Linear, SphericalHarmonics

_DEFAULTS = dict(r_max=5.0, l_max=2, num_features=32, num_layers=4, num_basis=8, cutoff_p=6, parity=True,
                 radial_hidden=64, radial_depth=2, avg_num_neighbors=1.0, dtype="float64")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EquiForceModel(torch.nn.Module):
    """``forward(edge_vectors[E, 3], species[N], edge_src[E], edge_dst[E]) -> E_i[N]`` (eV).

    Edges carry messages from ``edge_src`` to ``edge_dst``; ``edge_vectors`` point from the
    receiver to the sender, ``positions[src] - positions[dst] + S @ cell`` (Angstrom). The model
    sees positions only through edge vectors, so forces and the virial both follow from dE/d(edge
    vectors) in one backward pass, correct with periodic images and ghost atoms alike.
    ``species`` are indices into ``self.species`` (element symbols).
    """

    def __init__(self, species: List[str], r_max: float = 5.0, l_max: int = 2, num_features: int = 32,
                 num_layers: int = 4, num_basis: int = 8, cutoff_p: int = 6, parity: bool = True,
                 radial_hidden: int = 64, radial_depth: int = 2, avg_num_neighbors: float = 1.0) -> None:
        super().__init__()
        if not species or len(set(species)) != len(species):
            raise ValueError(f"species must be a non-empty list of distinct element symbols, got {species}")
        if not 0 <= l_max <= 6 or num_layers < 1 or num_features < 1 or r_max <= 0:
            raise ValueError("need 0 <= l_max <= 6, num_layers >= 1, num_features >= 1 and r_max > 0")
        self.species = list(species)
        self.r_max = float(r_max)
        self.num_layers = int(num_layers)
        num_species = len(species)
        self.embedding = Linear(f"{num_species}x0e", f"{num_features}x0e")
        self.sh = SphericalHarmonics(Irreps.spherical_harmonics(l_max), normalize=True, normalization="component")
        self.basis = BesselBasis(r_max, num_basis)
        self.cutoff = PolynomialCutoff(r_max, cutoff_p)
        target = hidden_irreps(num_features, l_max, parity)
        irreps = Irreps(f"{num_features}x0e")
        layers = []
        for _ in range(num_layers):
            layer = Interaction(irreps, self.sh.irreps_out, target, num_species, num_basis, radial_hidden,
                                radial_depth, avg_num_neighbors)
            layers.append(layer)
            irreps = layer.irreps_out
        self.layers = torch.nn.ModuleList(layers)
        self.readout_hidden = Linear(irreps, f"{max(num_features // 2, 1)}x0e")
        self.readout = Linear(f"{max(num_features // 2, 1)}x0e", "1x0e")
        self.register_buffer("energy_shift", torch.zeros(num_species))
        self.register_buffer("energy_scale", torch.ones(num_species))

    @classmethod
    def from_config(cls, config: Dict) -> "EquiForceModel":
        """Build from a dict: ``species`` (required), ``r_max``, ``l_max``, ``num_features``,
        ``num_layers``, ``num_basis``, ``cutoff_p``, ``parity``, ``radial_hidden``, ``radial_depth``,
        ``avg_num_neighbors``, ``dtype`` ('float32' or 'float64'). Unknown keys are an error."""
        config = dict(config)
        if "species" not in config:
            raise ValueError("model config needs 'species', e.g. ['C', 'H', 'O']")
        unknown = set(config) - set(_DEFAULTS) - {"species"}
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}; known: {sorted(set(_DEFAULTS) | {'species'})}")
        options = {**_DEFAULTS, **config}
        dtype = options.pop("dtype")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        return cls(**options).to(_DTYPES[dtype])

    def species_index(self, symbols: List[str]) -> torch.Tensor:
        """Element symbols -> species indices; unknown elements are an error that names them."""
        lookup = {s: n for n, s in enumerate(self.species)}
        missing = sorted({s for s in symbols if s not in lookup})
        if missing:
            raise ValueError(f"this model knows the elements {self.species}, not {missing}")
        return torch.tensor([lookup[s] for s in symbols], dtype=torch.long)

    def forward(self, vec: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                edge_dst: torch.Tensor, layer_nodes: Optional[List[int]] = None,
                layer_edges: Optional[List[int]] = None) -> torch.Tensor:
        """``layer_nodes``/``layer_edges`` (one entry per layer, for hosts with ghost atoms): layer k
        updates only the first ``layer_nodes[k]`` nodes from the first ``layer_edges[k]`` edges — nodes
        ordered by message-passing hops from the atoms whose energy counts, edges by their receiver's
        hops — so ghosts beyond the reach of the remaining layers cost nothing. Per-atom energies of
        nodes past ``layer_nodes[-1]`` are then zero."""
        r = torch.linalg.vector_norm(vec, dim=-1)
        sh = self.sh(vec)
        radial = self.basis(r) * self.cutoff(r).unsqueeze(-1)
        one_hot = torch.nn.functional.one_hot(species, len(self.species)).to(vec.dtype)
        x = self.embedding(one_hot)
        if layer_nodes is None or layer_edges is None:
            for layer in self.layers:
                x = layer(x, one_hot, sh, radial, edge_src, edge_dst)
        else:
            if len(layer_nodes) != self.num_layers or len(layer_edges) != self.num_layers:
                raise ValueError("layer_nodes and layer_edges need one entry per layer")
            for k, layer in enumerate(self.layers):
                n, e = layer_nodes[k], layer_edges[k]
                x = layer(x, one_hot, sh[:e], radial[:e], edge_src[:e], edge_dst[:e], n)
        energy = self.readout(self.readout_hidden(x)).squeeze(-1)
        kept = energy.shape[0]
        energy = energy * self.energy_scale[species[:kept]] + self.energy_shift[species[:kept]]
        if kept < species.shape[0]:
            energy = torch.cat([energy, energy.new_zeros(species.shape[0] - kept)])
        return energy


def edge_forces_and_virial(vec_grad: torch.Tensor, vec: torch.Tensor, edge_src: torch.Tensor,
                           edge_dst: torch.Tensor, num_atoms: int):
    """From g = dE/d(edge vectors): forces ``-dE/dr`` on every atom (an edge vector is
    r_src - r_dst + shift) and the virial ``W = -sum_e vec_e (x) g_e`` (eV)."""
    grad_pos = torch.zeros(num_atoms, 3, dtype=vec.dtype, device=vec.device)
    grad_pos = grad_pos.index_add(0, edge_src, vec_grad).index_add(0, edge_dst, -vec_grad)
    return -grad_pos, -(vec.transpose(0, 1) @ vec_grad)


def evaluate(model: EquiForceModel, positions: torch.Tensor, species: torch.Tensor,
             cell: Optional[torch.Tensor] = None, pbc=False, forces: bool = True,
             stress: bool = False) -> Dict[str, torch.Tensor]:
    """Energy (eV), per-atom energies, forces (eV/A) and, for a periodic cell, the virial (eV) and
    stress (eV/A^3, ASE's sign: dE/dstrain / volume) of one structure."""
    from ..ops import neighbor_list

    dtype = model.energy_shift.dtype
    positions = positions.to(dtype).detach()
    cell = torch.zeros(3, 3, dtype=dtype) if cell is None else torch.as_tensor(cell, dtype=dtype)
    i, j, shift_index = neighbor_list(positions, cell, pbc, model.r_max)
    # ASE's pairs (i, j) have D = pos[j] - pos[i] + S @ cell: messages flow from j to i
    vec = (positions[j] - positions[i] + shift_index.to(dtype) @ cell).requires_grad_(forces or stress)
    atomic = model(vec, species, j, i)
    energy = atomic.sum()
    out = {"energy": energy.detach(), "energies": atomic.detach()}
    if forces or stress:
        (vec_grad,) = torch.autograd.grad(energy, vec)
        f, virial = edge_forces_and_virial(vec_grad, vec.detach(), j, i, positions.shape[0])
        if forces:
            out["forces"] = f
        if stress:
            volume = torch.abs(torch.det(cell))
            if volume == 0:
                raise ValueError("stress needs a periodic cell with non-zero volume")
            out["virial"] = virial
            out["stress"] = -virial / volume
    return out
