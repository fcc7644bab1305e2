"""The pair style's graph builder (lammps_plugin/graph_builder.h, no LAMMPS in it) on hand-made atoms
and neighbour lists with known answers: periodic images folded onto their owner as edge shifts
(orthogonal and triclinic), hops from owned atoms to ghosts owned by other ranks, layer sizes, types
left to other styles, empty sub-domains, LAMMPS's special-bond bits; and, on random triclinic
crystals, the same edges as ASE's periodic neighbour list. Runs without the plugin (plain g++)."""
import json
import subprocess

import numpy as np
import pytest

NEIGHMASK = 0x1FFFFFFF  # LAMMPS's index mask; bits 30-31 flag special bonds


def build(driver, x, tags, types, nlocal, neighbors, species_of_type, r_max, num_layers, mask=-1,
          find_owners=True):
    """Runs GraphBuilder on atoms (owned first, then ghosts) and full neighbour rows; returns its graph."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    lines = [f"{r_max!r} {num_layers} {mask}", f"{len(species_of_type)} " + " ".join(map(str, species_of_type)),
             f"{nlocal} {len(x) - nlocal}"]
    lines += [f"{t} {ty} " + " ".join(repr(float(v)) for v in p) for t, ty, p in zip(tags, types, x)]
    lines += [" ".join(map(str, [len(row), *row])) for row in neighbors]
    lines.append("1" if find_owners else "0")
    out = subprocess.run([str(driver), "graph"], input="\n".join(lines) + "\n", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    graph = json.loads(out.stdout)
    if "error" not in graph:
        graph["positions"] = np.array(graph["positions"]).reshape(-1, 3)
        graph["edge_shift"] = np.array(graph["edge_shift"]).reshape(-1, 3)
    return graph


def full_list(x, nall, reach, rows_for=None):
    """Brute-force full neighbour rows: every other atom within ``reach`` (the cutoff plus a skin, as
    LAMMPS lists them), for the atoms in ``rows_for`` (default: all)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    rows_for = range(nall) if rows_for is None else rows_for
    rows = [[] for _ in range(nall)]
    for i in rows_for:
        d = np.linalg.norm(x - x[i], axis=1)
        rows[i] = [j for j in np.argsort(d, kind="stable") if j != i and d[j] < reach]
    return rows


def edges(graph):
    """{(receiver, sender, rounded shift)} of a graph."""
    return {(d, s, tuple(np.round(v, 9) + 0.0)) for d, s, v in
            zip(graph["edge_dst"], graph["edge_src"], graph["edge_shift"])}


def test_periodic_images_fold_onto_their_owner(plugin_parts_driver):
    """One rank, a 4 A periodic chain along x: the ghosts are images of the two owned atoms and become
    edge shifts of +-4 A; an image listed beyond r_max (the skin) gives no edge."""
    x = [[0.5, 0, 0], [2.5, 0, 0], [4.5, 0, 0], [-1.5, 0, 0], [-3.5, 0, 0]]
    tags, types = [1, 2, 1, 2, 1], [1, 1, 1, 1, 1]
    neighbors = [[1, 3, 4], [0, 2], [], [], []]  # atom 0 lists the image at 4 A (beyond r_max 2.8)
    g = build(plugin_parts_driver, x, tags, types, 2, neighbors, [0], r_max=2.8, num_layers=2)
    assert g["atom_of_node"] == [0, 1] and g["num_local_nodes"] == 2 and not g["has_ghost_nodes"]
    assert g["owners"] == [0, 1, 0, 1, 0]
    assert edges(g) == {(0, 1, (0.0, 0.0, 0.0)), (0, 1, (-4.0, 0.0, 0.0)), (1, 0, (0.0, 0.0, 0.0)),
                        (1, 0, (4.0, 0.0, 0.0))}
    assert g["edge_dst"] == sorted(g["edge_dst"])  # grouped by receiver
    np.testing.assert_array_equal(g["positions"], np.array(x[:2]))
    assert g["layer_sizes"] == [2, 2, 4, 4]


def test_triclinic_image_shift_is_the_lattice_vector(plugin_parts_driver):
    """An atom and its own image at x + b - a in a triclinic cell: an edge from the atom to itself,
    shifted by b - a (and its mirror, by a - b)."""
    cell = np.array([[3.0, 0, 0], [1.0, 3.0, 0], [0.5, 0.7, 3.0]])
    x0 = np.array([0.3, 0.2, 0.1])
    x = [x0, x0 + cell[1] - cell[0], x0 + cell[0] - cell[1], x0 + cell[2]]
    g = build(plugin_parts_driver, x, [7, 7, 7, 7], [1] * 4, 1, [[1, 2, 3], [], [], []], [0], r_max=3.7,
              num_layers=1)
    assert g["atom_of_node"] == [0] and g["edge_src"] == [0, 0, 0] and g["edge_dst"] == [0, 0, 0]
    np.testing.assert_allclose(g["edge_shift"], [cell[1] - cell[0], cell[0] - cell[1], cell[2]], rtol=0,
                               atol=1e-14)


def chain(num_layers):
    """Several ranks: this one owns tags 1, 2 at x = 0, 1; ghosts owned elsewhere at x = 2, 3, 4 and
    -1, -2, -3 (spacing 1 A, r_max 1.5 A), listed with a skin and with rows for the ghosts too."""
    xs = [0, 1, 2, 3, 4, -1, -2, -3]
    x = [[v, 0, 0] for v in xs]
    tags = [1, 2, 3, 4, 5, 6, 7, 8]
    return x, tags, full_list(x, len(x), reach=2.5)


def test_hops_order_ghost_nodes_and_layer_sizes(plugin_parts_driver):
    x, tags, neighbors = chain(2)
    g = build(plugin_parts_driver, x, tags, [1] * 8, 2, neighbors, [0], r_max=1.5, num_layers=2)
    assert g["hops"] == [0, 0, 1, 2, -1, 1, 2, -1]
    # owned, then one hop out (x = 2, -1), then two hops out (x = 3, -2); x = 4, -3 are out of reach
    assert g["atom_of_node"] == [0, 1, 2, 5, 3, 6] and g["num_local_nodes"] == 2 and g["has_ghost_nodes"]
    node = {a: k for k, a in enumerate(g["atom_of_node"])}
    zero = (0.0, 0.0, 0.0)
    # messages into the owned atoms and the one-hop ghosts only; two-hop ghosts only send
    assert edges(g) == {(node[0], node[1], zero), (node[0], node[5], zero), (node[1], node[0], zero),
                        (node[1], node[2], zero), (node[2], node[1], zero), (node[2], node[3], zero),
                        (node[5], node[0], zero), (node[5], node[6], zero)}
    # layer 0 updates owned + one-hop nodes from all 8 edges; layer 1 (the last) the owned ones from 4
    assert g["layer_sizes"] == [4, 2, 8, 4]
    assert g["edge_dst"][:4] == [0, 0, 1, 1]


def test_three_layers_reach_three_hops(plugin_parts_driver):
    x, tags, neighbors = chain(3)
    g = build(plugin_parts_driver, x, tags, [1] * 8, 2, neighbors, [0], r_max=1.5, num_layers=3)
    assert g["hops"] == [0, 0, 1, 2, 3, 1, 2, 3]
    assert g["atom_of_node"] == [0, 1, 2, 5, 3, 6, 4, 7]
    assert g["layer_sizes"] == [6, 4, 2, 12, 8, 4]


def test_images_of_owned_atoms_fold_on_several_ranks_too(plugin_parts_driver):
    """A ghost that is an image of an owned atom (tag 1 again, at x = -1) is an edge shift, never a
    node, and hops do not pass through it."""
    x, tags, neighbors = chain(2)
    tags[5] = 1  # x = -1 is now an image of the owned atom at x = 0, as in a cell 1 A long in x
    g = build(plugin_parts_driver, x, tags, [1] * 8, 2, neighbors, [0], r_max=1.5, num_layers=2)
    assert g["owners"][5] == 0 and g["hops"][5] == -1 and g["hops"][6] == -1
    assert 5 not in g["atom_of_node"] and 6 not in g["atom_of_node"]
    assert (0, 0, (-1.0, 0.0, 0.0)) in edges(g)


def test_types_left_to_other_styles_are_neither_nodes_nor_neighbours(plugin_parts_driver):
    """species_of_type -1 (pair_coeff NULL): atom 1 (type 2) is dropped; type 3 maps to species 0."""
    x, tags, neighbors = chain(2)
    types = [3, 2, 1, 1, 1, 3, 1, 1]
    g = build(plugin_parts_driver, x, tags, types, 2, neighbors, [1, -1, 0], r_max=1.5, num_layers=2)
    assert g["atom_of_node"] == [0, 5, 6] and g["num_local_nodes"] == 1
    assert g["species"] == [0, 0, 1]
    assert all(1 not in (g["atom_of_node"][s], g["atom_of_node"][d]) for s, d in zip(g["edge_src"], g["edge_dst"]))


@pytest.mark.parametrize("nghost", [0, 3])
def test_empty_subdomain(plugin_parts_driver, nghost):
    x = [[v, 0, 0] for v in range(nghost)]
    g = build(plugin_parts_driver, x, list(range(1, nghost + 1)), [1] * nghost, 0,
              full_list(x, nghost, 2.5), [0], r_max=1.5, num_layers=2)
    assert g["atom_of_node"] == [] and g["edge_src"] == [] and g["num_local_nodes"] == 0
    assert g["layer_sizes"] == [0, 0, 0, 0]


def test_special_bond_bits_are_masked(plugin_parts_driver):
    x, tags, neighbors = chain(2)
    plain = build(plugin_parts_driver, x, tags, [1] * 8, 2, neighbors, [0], r_max=1.5, num_layers=2)
    flagged = [[j | (1 << 30) if k % 2 else j for k, j in enumerate(row)] for row in neighbors]
    masked = build(plugin_parts_driver, x, tags, [1] * 8, 2, flagged, [0], r_max=1.5, num_layers=2,
                   mask=NEIGHMASK)
    for key, value in plain.items():
        np.testing.assert_array_equal(masked[key], value, err_msg=key)


def test_build_without_owners_is_refused(plugin_parts_driver):
    x, tags, neighbors = chain(2)
    g = build(plugin_parts_driver, x, tags, [1] * 8, 2, neighbors, [0], r_max=1.5, num_layers=2,
              find_owners=False)
    assert "find_owners" in g["error"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_rank_graph_is_the_periodic_graph(plugin_parts_driver, seed):
    """Random triclinic crystals, ghosts = all periodic images near the cell (as one LAMMPS rank has
    them): the edges are ASE's periodic neighbour list (i, j, S @ cell), one for one."""
    from ase.neighborlist import primitive_neighbor_list

    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(3.5, 5.0, 3)) + np.tril(rng.uniform(-1.0, 1.0, (3, 3)), -1)
    n, r_max = 6, 2.6
    owned = rng.uniform(0, 1, (n, 3)) @ cell
    images = [(a, b, c) for a in range(-2, 3) for b in range(-2, 3) for c in range(-2, 3) if (a, b, c) != (0, 0, 0)]
    ghosts = [(i, np.array(s) @ cell + owned[i]) for s in images for i in range(n)]
    x = np.concatenate([owned, np.array([p for _, p in ghosts])])
    tags = list(range(1, n + 1)) + [i + 1 for i, _ in ghosts]
    types = [1 + (i % 2) for i in range(n)] + [1 + (i % 2) for i, _ in ghosts]
    g = build(plugin_parts_driver, x, tags, types, n, full_list(x, len(x), r_max + 1.0, rows_for=range(n)),
              [0, 1], r_max=r_max, num_layers=2)
    assert g["atom_of_node"] == list(range(n)) and not g["has_ghost_nodes"]
    i, j, shift = primitive_neighbor_list("ijS", [True] * 3, cell, owned, r_max, self_interaction=False)
    ase_edges = {(a, b, tuple(np.round(s @ cell, 9) + 0.0)) for a, b, s in zip(i, j, shift)}
    assert len(ase_edges) == len(i) > n  # a real test: several neighbours each
    assert edges(g) == ase_edges
    assert g["species"] == [i % 2 for i in range(n)]
