"""EquiForceModel: NequIP-style E(3)-equivariant message passing on equiforce's operators.

Energy is a sum of per-atom energies (invariant); forces are -dE/dr and the virial comes from the
derivative with respect to a homogeneous strain, both by autograd in one place, :meth:`EquiForceModel.outputs`.

Optional heads read the last layer's equivariant features: ``dipole`` (a 1o vector per atom, plus
sum q_i r_i with learned charges), ``polarizability`` (0e + 2e per atom -> a symmetric 3x3 tensor) and
``long_range: ewald`` (a 0e charge per atom, neutral per structure by construction, whose Coulomb
energy — direct sum or Ewald, :mod:`.electrostatics` — adds to the local energy).
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ..algebra import Irrep, Irreps
from ..nn import BesselBasis, Interaction, PolynomialCutoff, XPLORCutoff, hidden_irreps
from ..nn.interaction import with_modality
from ..o3 import Linear, SphericalHarmonics
from .electrostatics import coulomb_potential
from .predict import edge_virials_per_atom

_DEFAULTS = dict(r_max=5.0, l_max=2, num_features=32, num_layers=4, num_basis=8, cutoff_p=6, parity=True,
                 radial_hidden=64, radial_depth=2, avg_num_neighbors=1.0, dtype="float64", dipole=False,
                 polarizability=False, long_range="none", total_charge=0.0, ewald_cutoff=8.0, ewald_accuracy=1e-6,
                 # architecture options (NequIP / SevenNet names in the README's table)
                 symmetry="O3", layer_irreps=None, self_connection="tensor_product", residual=True,
                 gate_activation="sigmoid", scalar_activation_scale=1.0, gate_activation_scale=1.0,
                 bessel_prefactor="sqrt(2/r_max)", trainable_bessel=True, cutoff="polynomial", cutoff_on=None,
                 normalize_sh=True, conv_denominator=None, readout_hidden=None, sort_paths=False, source=None,
                 modalities=None, modality=None, modality_inputs=None, odd_scalar_activation_scale=1.0)
LONG_RANGE = ("none", "ewald")
SYMMETRIES = ("O3", "SO3")
CUTOFFS = ("polynomial", "xplor")


def quadrupole_basis() -> np.ndarray:
    """``C[5, 3, 3]``: symmetric traceless matrices with ``Y^2_m(r) = r^T C_m r`` (component
    normalisation). A 2e feature f maps to the tensor ``sum_m f_m C_m``, which rotates as R T R^T."""
    from ..algebra.spherical_harmonics import spherical_harmonics

    r = np.random.default_rng(0).normal(size=(12, 3))
    y2 = spherical_harmonics(2, r, normalize=False, normalization="component")[:, 4:9]
    pairs = [(a, b) for a in range(3) for b in range(a, 3)]
    monomials = np.stack([r[:, a] * r[:, b] for a, b in pairs], axis=1)
    coeffs = np.linalg.lstsq(monomials, y2, rcond=None)[0]  # [6, 5]
    basis = np.zeros((5, 3, 3))
    for n, (a, b) in enumerate(pairs):
        basis[:, a, b] += coeffs[n] / (1.0 if a == b else 2.0)
        if a != b:
            basis[:, b, a] += coeffs[n] / 2.0
    return basis
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
                 radial_hidden: int = 64, radial_depth: int = 2, avg_num_neighbors: float = 1.0,
                 dipole: bool = False, polarizability: bool = False, long_range: str = "none",
                 total_charge: float = 0.0, ewald_cutoff: float = 8.0, ewald_accuracy: float = 1e-6,
                 symmetry: str = "O3", layer_irreps: Optional[List[str]] = None,
                 self_connection: str = "tensor_product", residual: bool = True, gate_activation: str = "sigmoid",
                 scalar_activation_scale: float = 1.0, gate_activation_scale: float = 1.0,
                 bessel_prefactor: str = "sqrt(2/r_max)", trainable_bessel: bool = True, cutoff: str = "polynomial",
                 cutoff_on: Optional[float] = None, normalize_sh: bool = True, conv_denominator=None,
                 readout_hidden: Optional[int] = None, sort_paths: bool = False,
                 odd_scalar_activation_scale: float = 1.0,
                 source: Optional[Dict[str, str]] = None, modalities: Optional[List[str]] = None,
                 modality: Optional[str] = None, modality_inputs: Optional[List[str]] = None) -> None:
        super().__init__()
        if not species or len(set(species)) != len(species):
            raise ValueError(f"species must be a non-empty list of distinct element symbols, got {species}")
        if not 0 <= l_max <= 6 or num_layers < 1 or num_features < 1 or r_max <= 0:
            raise ValueError("need 0 <= l_max <= 6, num_layers >= 1, num_features >= 1 and r_max > 0")
        if symmetry not in SYMMETRIES:
            raise ValueError(f"symmetry must be one of {SYMMETRIES} (SO3: rotations only, every feature even, as "
                             f"SevenNet's is_parity: false), got {symmetry!r}")
        if cutoff not in CUTOFFS:
            raise ValueError(f"cutoff must be one of {CUTOFFS}, got {cutoff!r}")
        self.species = list(species)
        self.r_max = float(r_max)
        self.num_layers = int(num_layers)
        self.symmetry = symmetry
        self.source = {str(k): str(v) for k, v in (source or {}).items()}
        num_species = len(species)
        one_hot_modality, inputs = self._modality_one_hot(modalities, modality, modality_inputs)
        self.modalities, self.modality = list(modalities or []), modality
        extra = Irreps(f"{len(self.modalities)}x0e") if one_hot_modality is not None else Irreps("")
        self.modality_embedding = "embedding" in inputs
        self.modality_readout = "readout" in inputs
        self.register_buffer("_modality", torch.zeros(0) if one_hot_modality is None else one_hot_modality)
        irreps_per_layer = self._layer_irreps(layer_irreps, num_features, num_layers, l_max, parity, symmetry)
        self.embedding = Linear(Irreps(f"{num_species}x0e") + (extra if self.modality_embedding else Irreps("")),
                                irreps_per_layer[0])
        if symmetry == "SO3":  # harmonics of a pseudovector: every degree even, so no feature is odd
            self.sh = SphericalHarmonics(Irreps.spherical_harmonics(l_max, 1), normalize=bool(normalize_sh),
                                         normalization="component", irreps_in="1x1e")
        else:
            self.sh = SphericalHarmonics(Irreps.spherical_harmonics(l_max), normalize=bool(normalize_sh),
                                         normalization="component")
        self.basis = BesselBasis(r_max, num_basis, trainable=bool(trainable_bessel), prefactor=bessel_prefactor)
        if cutoff == "xplor":
            if cutoff_on is None:
                raise ValueError("cutoff: xplor needs cutoff_on (A, where the switching starts; SevenNet-0: 4.5)")
            self.cutoff = XPLORCutoff(r_max, float(cutoff_on))
        else:
            self.cutoff = PolynomialCutoff(r_max, cutoff_p)
        denominators = conv_denominator if isinstance(conv_denominator, (list, tuple)) else \
            [conv_denominator] * num_layers
        if len(denominators) != num_layers:
            raise ValueError(f"conv_denominator needs one value per layer ({num_layers}), got {len(denominators)}")
        connections = list(self_connection) if isinstance(self_connection, (list, tuple)) else \
            [self_connection] * num_layers
        if len(connections) != num_layers:
            raise ValueError(f"self_connection needs one kind per layer ({num_layers}), got {len(connections)}")
        irreps = irreps_per_layer[0]
        layers = []
        for k in range(num_layers):
            layer = Interaction(irreps, self.sh.irreps_out, irreps_per_layer[k + 1], num_species, num_basis,
                                radial_hidden, radial_depth, avg_num_neighbors, self_connection=connections[k],
                                residual=residual, gate_activation=gate_activation,
                                scalar_scale=scalar_activation_scale, gate_scale=gate_activation_scale,
                                odd_scale=odd_scalar_activation_scale,
                                denominator=None if denominators[k] is None else float(denominators[k]),
                                sort_paths=bool(sort_paths), modality=one_hot_modality,
                                modality_in="interaction_in" in inputs, modality_out="interaction_out" in inputs)
            layers.append(layer)
            irreps = layer.irreps_out
        self.layers = torch.nn.ModuleList(layers)
        if Irrep("0e") not in {ir for _, ir in irreps}:
            raise ValueError(f"the last layer's features {irreps} have no scalars (0e) for the energy readout")
        readout_in = irreps + (extra if self.modality_readout else Irreps(""))
        if readout_hidden == 0:  # one Linear to the energy (nequip >= 0.7's default)
            self.readout_hidden = None
            self.readout = Linear(readout_in, "1x0e")
        else:
            hidden = int(readout_hidden) if readout_hidden else max(num_features // 2, 1)
            self.readout_hidden = Linear(readout_in, f"{hidden}x0e")
            self.readout = Linear(f"{hidden}x0e", "1x0e")
        self.register_buffer("energy_shift", torch.zeros(num_species))
        self.register_buffer("energy_scale", torch.ones(num_species))
        self._add_heads(irreps, dipole, bool(polarizability), str(long_range or "none"), float(total_charge),
                        float(ewald_cutoff), float(ewald_accuracy))

    @staticmethod
    def _modality_one_hot(modalities, modality, inputs):
        """(the one-hot of ``modality`` among ``modalities`` or None, the set of inputs that take it)."""
        known = ("embedding", "interaction_in", "interaction_out", "readout")
        if not modalities:
            if modality is not None or inputs:
                raise ValueError("modality and modality_inputs need modalities (the list of fidelities, e.g. "
                                 "['R2SCAN', 'PBE'])")
            return None, set()
        if modality not in modalities:
            raise ValueError(f"this multi-fidelity model has the modalities {list(modalities)}; choose one of them "
                             f"(modality: {modalities[-1]}), not {modality!r}")
        inputs = set(inputs or [])
        if not inputs or inputs - set(known):
            raise ValueError(f"modality_inputs must be a non-empty subset of {known}, got {sorted(inputs)}")
        one_hot = torch.zeros(len(modalities))
        one_hot[list(modalities).index(modality)] = 1.0
        return one_hot, inputs

    @staticmethod
    def _layer_irreps(layer_irreps, num_features: int, num_layers: int, l_max: int, parity: bool,
                      symmetry: str) -> List[Irreps]:
        """The embedding's irreps, then each layer's target irreps (``num_layers + 1`` entries; SevenNet's
        ``irreps_manual``). Layers keep the targets their convolution can reach."""
        if layer_irreps is None:
            if symmetry == "SO3":
                target = Irreps([(num_features, Irrep(l, 1)) for l in range(l_max + 1)])
            else:
                target = hidden_irreps(num_features, l_max, parity)
            return [Irreps(f"{num_features}x0e")] + [target] * num_layers
        if len(layer_irreps) != num_layers + 1:
            raise ValueError(f"layer_irreps needs num_layers + 1 = {num_layers + 1} entries (the embedding's irreps, "
                             f"then each layer's), got {len(layer_irreps)}")
        out = [Irreps(ir) for ir in layer_irreps]
        if any(ir != Irrep("0e") for _, ir in out[0]):
            raise ValueError(f"layer_irreps[0] (the species embedding) must be scalars like '128x0e', got {out[0]}")
        return out

    def _add_heads(self, irreps: Irreps, dipole, polarizability: bool, long_range: str, total_charge: float,
                   ewald_cutoff: float, ewald_accuracy: float) -> None:
        have = {ir for _, ir in irreps}
        if long_range not in LONG_RANGE:
            raise ValueError(f"long_range must be one of {LONG_RANGE}, got {long_range!r}")
        if dipole not in (True, False, "charges"):
            raise ValueError(f"dipole must be true, false or 'charges', got {dipole!r}")
        charges_only = dipole == "charges"
        if charges_only and long_range == "none":
            raise ValueError("dipole: charges (the dipole of the learned charges alone) needs long_range: ewald")
        if dipole is True and Irrep("1o") not in have:
            raise ValueError("dipole: true needs l_max >= 1 (vector features reach the output); a model with only "
                             "invariant features can only predict a constant dipole")
        if polarizability and (Irrep("2e") not in have or Irrep("0e") not in have):
            raise ValueError("polarizability: true needs l_max >= 2 and 2e features (parity: true or false both "
                             "have them) to represent the anisotropic part")
        self.dipole, self.polarizability, self.long_range = bool(dipole), polarizability, long_range
        self.total_charge, self.ewald_cutoff, self.ewald_accuracy = total_charge, ewald_cutoff, ewald_accuracy
        if long_range != "none":
            self.charge_readout = Linear(irreps, "1x0e")
        if dipole is True:
            self.dipole_readout = Linear(irreps, "1x1o")  # 1o components are Cartesian (x, y, z)
        if polarizability:
            self.polarizability_readout = Linear(irreps, "1x0e + 1x2e")
            self.register_buffer("_quadrupole_basis", torch.tensor(quadrupole_basis()).reshape(5, 9))

    @classmethod
    def from_config(cls, config: Dict) -> "EquiForceModel":
        """Build from a dict: ``species`` (required), ``r_max``, ``l_max``, ``num_features``,
        ``num_layers``, ``num_basis``, ``cutoff_p``, ``parity``, ``radial_hidden``, ``radial_depth``,
        ``avg_num_neighbors``, ``dtype`` ('float32' or 'float64'), the architecture options of the README's
        table (``symmetry``, ``layer_irreps``, ``self_connection`` — one kind, or one per layer —,
        ``residual``, ``gate_activation`` with ``scalar_activation_scale``, ``gate_activation_scale`` and
        ``odd_scalar_activation_scale``, ``bessel_prefactor``, ``trainable_bessel``, ``cutoff``,
        ``cutoff_on``, ``normalize_sh``, ``conv_denominator``, ``readout_hidden`` — 0 for one Linear —,
        ``sort_paths``, ``modalities``/``modality``/``modality_inputs``, ``source``), and the heads: ``dipole`` (true:
        per-atom vectors plus the charges' sum q_i r_i; 'charges': that sum alone, which makes the
        learned charges reproduce the dipole), ``polarizability`` (bool), ``long_range`` ('none' or
        'ewald'), ``total_charge`` (e), ``ewald_cutoff`` (A, real-space cutoff), ``ewald_accuracy``.
        Unknown keys are an error."""
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
        x = self.node_features(vec, species, edge_src, edge_dst, layer_nodes, layer_edges)
        return self.atomic_energies(x, species)

    def node_features(self, vec: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                      layer_nodes: Optional[List[int]] = None, layer_edges: Optional[List[int]] = None) -> torch.Tensor:
        """The last layer's features ``[N_kept, irreps]`` (see ``forward`` for the layer sizes)."""
        sh, radial = self.edge_features(vec)
        x, one_hot = self.embed(species, vec.dtype)
        if layer_nodes is None or layer_edges is None:
            for layer in self.layers:
                x = layer(x, one_hot, sh, radial, edge_src, edge_dst)
        else:
            if len(layer_nodes) != self.num_layers or len(layer_edges) != self.num_layers:
                raise ValueError("layer_nodes and layer_edges need one entry per layer")
            for k, layer in enumerate(self.layers):
                n, e = layer_nodes[k], layer_edges[k]
                x = layer(x, one_hot, sh[:e], radial[:e], edge_src[:e], edge_dst[:e], n)
        return x

    # The stages, one by one (hosts that exchange node features between layers call them through the
    # deployed model's stage_* methods): edge_features, embed, each of self.layers, atomic_energies.
    def edge_features(self, vec: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(sh [E, irreps_sh], radial [E, num_basis])`` of the edge vectors: all the layers read of them."""
        r = torch.linalg.vector_norm(vec, dim=-1)
        return self.sh(vec), self.basis(r) * self.cutoff(r).unsqueeze(-1)

    def embed(self, species: torch.Tensor, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(x [N, irreps of the embedding], one-hot [N, S])``: the first layer's input, from species alone."""
        one_hot = torch.nn.functional.one_hot(species, len(self.species)).to(dtype)
        return self.embedding(with_modality(one_hot, self._modality) if self.modality_embedding else one_hot), one_hot

    def node_widths(self) -> List[int]:
        """The width of each layer's output features (numbers per node): what a host exchanges."""
        return [int(layer.irreps_out.dim) for layer in self.layers]

    def atomic_energies(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Local per-atom energies [N] (zero for nodes past ``x``'s rows)."""
        hidden = with_modality(x, self._modality) if self.modality_readout else x
        if self.readout_hidden is not None:
            hidden = self.readout_hidden(hidden)
        energy = self.readout(hidden).squeeze(-1)
        kept = energy.shape[0]
        energy = energy * self.energy_scale[species[:kept]] + self.energy_shift[species[:kept]]
        if kept < species.shape[0]:
            energy = torch.cat([energy, energy.new_zeros(species.shape[0] - kept)])
        return energy

    def charges(self, x: torch.Tensor, atom_graph: torch.Tensor, num_graphs: int,
                raw_charges: bool = False) -> torch.Tensor:
        """Per-atom charges (e), shifted equally within each structure so that each sums to
        ``total_charge`` (``raw_charges``: x is already the charge readout's output, [N, 1])."""
        if hasattr(self, "charge_readout"):
            raw = x.squeeze(-1) if raw_charges else self.charge_readout(x).squeeze(-1)
            total = torch.zeros(num_graphs, dtype=raw.dtype, device=raw.device).index_add(0, atom_graph, raw)
            count = torch.zeros(num_graphs, dtype=raw.dtype, device=raw.device).index_add(
                0, atom_graph, torch.ones_like(raw))
            return raw - ((total - self.total_charge) / count)[atom_graph]
        raise RuntimeError("this model has no charges (long_range: none)")

    def raw_charges(self, x: torch.Tensor) -> torch.Tensor:
        """The charge readout [N] before the shift that makes a structure's charges sum to total_charge."""
        if hasattr(self, "charge_readout"):
            return self.charge_readout(x).squeeze(-1)
        raise RuntimeError("this model has no charges (long_range: none)")

    def atomic_dipoles(self, x: torch.Tensor) -> torch.Tensor:
        """Per-atom dipole vectors [N, 3] (e A), before the charges' sum q_i r_i (zero with
        ``dipole: charges``, where the dipole is the charges' alone)."""
        if hasattr(self, "dipole_readout"):
            return self.dipole_readout(x)
        return x.new_zeros(x.shape[0], 3)

    def atomic_polarizabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Per-atom symmetric tensors [N, 3, 3]: an isotropic 0e part plus a traceless 2e part."""
        if hasattr(self, "polarizability_readout"):
            f = self.polarizability_readout(x)
            eye = torch.eye(3, dtype=x.dtype, device=x.device).reshape(1, 9)
            return (f[:, :1] * eye + f[:, 1:] @ self._quadrupole_basis).reshape(-1, 3, 3)
        raise RuntimeError("this model has no polarizability head (polarizability: false)")

    def coulomb(self, positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor,
                pbc: torch.Tensor) -> torch.Tensor:
        """Electrostatic potential at each atom (eV/e) of one structure."""
        return coulomb_potential(positions, charges, cell, pbc, self.ewald_cutoff, self.ewald_accuracy)

    def outputs(self, positions: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                edge_dst: torch.Tensor, edge_shift: torch.Tensor, atom_graph: torch.Tensor, num_graphs: int,
                cells: torch.Tensor, pbcs: torch.Tensor, forces: bool = True, virial: bool = False,
                create_graph: bool = False, atom_virials: bool = False, local: Optional[torch.Tensor] = None,
                layer_nodes: Optional[List[int]] = None,
                layer_edges: Optional[List[int]] = None) -> Dict[str, torch.Tensor]:
        """Everything the model predicts for a batch of ``num_graphs`` structures (``atom_graph[N]`` says
        whose atom each is; ``cells [B, 3, 3]``, ``pbcs [B, 3]``, read by long-range models only):
        ``energy [B]``, ``energies [N]``, and as asked and available ``forces [N, 3]``, ``virial [B, 3, 3]``
        (-dE/dstrain, eV), ``atom_virials [N, 3, 3]`` (each edge's ``-vec (x) dE/dvec`` half to each of
        its atoms, plus a long-range virial spread evenly, which has no unique per-atom split: they sum
        to the virial), ``edge_grad [E, 3]`` (dE/d edge vector), ``long_range_virial [B, 3, 3]``,
        ``charges [N]``, ``dipole [B, 3]`` and ``polarizability [B, 3, 3]``.

        The one derivation of forces and virials: training, the Python API, the exported contract and
        committees all call it. ``local [N]`` (bool) marks the atoms whose energies count (hosts with
        ghost atoms; default all); ``layer_nodes``/``layer_edges`` as in :meth:`forward`.
        ``create_graph`` keeps the graph of the derivatives, to train on forces and stress."""
        long_range = self.long_range != "none"
        virial = virial or (atom_virials and long_range)
        need_grad = forces or virial or atom_virials
        vec = (positions[edge_src] - positions[edge_dst] + edge_shift).detach().requires_grad_(need_grad)
        x = self.node_features(vec, species, edge_src, edge_dst, layer_nodes, layer_edges)
        atomic = self.atomic_energies(x, species)
        out: Dict[str, torch.Tensor] = {}
        pos = positions.detach()
        strain = torch.zeros(num_graphs, 3, 3, dtype=pos.dtype, device=pos.device)
        if long_range:
            pos = pos.requires_grad_(need_grad)
            strain = strain.requires_grad_(virial)
            q = self.charges(x, atom_graph, num_graphs)
            strained = pos + torch.bmm(pos.unsqueeze(1), strain[atom_graph]).squeeze(1)
            phi = torch.zeros_like(q)
            for b in range(num_graphs):
                atoms = torch.nonzero(atom_graph == b).flatten()
                cell = cells[b] + cells[b] @ strain[b]
                phi = phi.index_put([atoms], self.coulomb(strained[atoms], q[atoms], cell, pbcs[b]))
            atomic = atomic + 0.5 * q * phi
            out["charges"] = q
        counted = atomic if local is None else atomic * local.to(atomic.dtype)
        if num_graphs == 1:  # a sum, not a scatter: Inductor's CPU code for index_add onto one row fails (AOTI)
            energy = counted.sum().unsqueeze(0)
        else:
            energy = torch.zeros(num_graphs, dtype=atomic.dtype, device=atomic.device).index_add(0, atom_graph, counted)
        out["energy"] = energy
        out["energies"] = atomic
        if self.dipole:
            mu = self.atomic_dipoles(x)
            if long_range:
                mu = mu + out["charges"].unsqueeze(-1) * positions.detach()
            out["dipole"] = torch.zeros(num_graphs, 3, dtype=mu.dtype, device=mu.device).index_add(0, atom_graph, mu)
        if self.polarizability:
            alpha = self.atomic_polarizabilities(x).reshape(-1, 9)
            out["polarizability"] = torch.zeros(num_graphs, 9, dtype=alpha.dtype, device=alpha.device).index_add(
                0, atom_graph, alpha).reshape(-1, 3, 3)
        if not need_grad:
            return out
        inputs = [vec]
        if long_range:
            inputs.append(pos)
            if virial:
                inputs.append(strain)
        grads = torch.autograd.grad([energy.sum()], inputs, create_graph=create_graph, allow_unused=True)
        g = grads[0]
        if g is None:
            g = torch.zeros_like(vec)
        out["edge_grad"] = g
        if forces:
            grad_pos = torch.zeros_like(pos).index_add(0, edge_src, g).index_add(0, edge_dst, -g)
            if long_range:
                direct = grads[1]
                if direct is not None:
                    grad_pos = grad_pos + direct
            out["forces"] = -grad_pos
        edge_vec = vec.detach()
        lr_virial = torch.zeros(num_graphs, 3, 3, dtype=g.dtype, device=g.device)
        if long_range and virial:
            direct = grads[2]
            if direct is not None:
                lr_virial = -direct
            out["long_range_virial"] = lr_virial
        if virial:
            if num_graphs == 1:
                local_virial = -(edge_vec.transpose(0, 1) @ g).unsqueeze(0)
            else:
                outer = (edge_vec.unsqueeze(-1) * g.unsqueeze(-2)).reshape(-1, 9)
                local_virial = -torch.zeros(num_graphs, 9, dtype=g.dtype, device=g.device).index_add(
                    0, atom_graph[edge_dst], outer).reshape(-1, 3, 3)
            out["virial"] = local_virial + lr_virial
        if atom_virials:
            start = torch.zeros(positions.shape[0], 9, dtype=g.dtype, device=g.device)
            if long_range:
                count = torch.zeros(num_graphs, dtype=g.dtype, device=g.device).index_add(
                    0, atom_graph, torch.ones_like(atomic))
                start = (lr_virial.reshape(-1, 9) / count.unsqueeze(-1))[atom_graph]
            out["atom_virials"] = edge_virials_per_atom(edge_vec, g, edge_src, edge_dst, start)
        return out
