// The LAMMPS-free parts of the pair-style plugin (lammps_plugin/graph_builder.h, lammps_version.h) as a
// command-line program, compiled and driven by tests/lammps/test_graph_builder.py and
// test_plugin_version.py (no LAMMPS, no torch).
//
//   plugin_parts_driver graph < input     prints the graph as JSON
//     input: r_max num_layers index_mask | ntypes species_of_type[1..ntypes] | nlocal nghost
//            | per atom: tag type x y z | per atom: count neighbour... | find_owners (1 or 0)
//   plugin_parts_driver version BUILT RUNNING          prints the version string of BUILT, then the note
//   plugin_parts_driver sizes T B I T' B' I'           prints the integer-size mismatch message
#include "graph_builder.h"
#include "lammps_version.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

template <typename T>
void print_array(const char* name, const std::vector<T>& values, bool last = false) {
  std::cout << "\"" << name << "\": [";
  for (size_t k = 0; k < values.size(); ++k) std::cout << (k ? ", " : "") << values[k];
  std::cout << "]" << (last ? "\n" : ",\n");
}

int graph() {
  double r_max;
  int num_layers, mask, ntypes, nlocal, nghost;
  std::cin >> r_max >> num_layers >> mask >> ntypes;
  std::vector<int> species_of_type(ntypes + 1, -1);
  for (int t = 1; t <= ntypes; ++t) std::cin >> species_of_type[t];
  std::cin >> nlocal >> nghost;
  const int nall = nlocal + nghost;
  std::vector<long long> tag(nall);
  std::vector<int> type(nall);
  std::vector<double> x(3 * static_cast<size_t>(nall));
  for (int i = 0; i < nall; ++i) std::cin >> tag[i] >> type[i] >> x[3 * i] >> x[3 * i + 1] >> x[3 * i + 2];
  std::vector<std::vector<int>> rows(nall);
  std::vector<const int*> first(nall);
  std::vector<int> count(nall);
  for (int i = 0; i < nall; ++i) {
    std::cin >> count[i];
    rows[i].resize(count[i]);
    for (int& j : rows[i]) std::cin >> j;
    first[i] = rows[i].data();
  }
  int find_owners = 1;
  std::cin >> find_owners;
  if (!std::cin) {
    std::cerr << "plugin_parts_driver graph: malformed input\n";
    return 2;
  }

  equiforce::lammps::GraphBuilder builder(r_max, num_layers, species_of_type);
  if (find_owners) builder.find_owners(nlocal, nghost, tag.data());
  equiforce::lammps::AtomArrays atoms;
  atoms.nlocal = nlocal;
  atoms.nghost = nghost;
  atoms.x = nall > 0 ? x.data() : nullptr;
  atoms.type = type.data();
  atoms.neighbors = first.data();
  atoms.num_neighbors = count.data();
  atoms.index_mask = mask;
  try {
    const auto& g = builder.build(atoms);
    std::cout.precision(17);
    std::cout << "{\n";
    print_array("atom_of_node", g.atom_of_node);
    print_array("positions", g.positions);
    print_array("species", g.species);
    print_array("edge_src", g.edge_src);
    print_array("edge_dst", g.edge_dst);
    print_array("edge_shift", g.edge_shift);
    print_array("layer_sizes", g.layer_sizes);
    std::vector<int> hops = builder.hops();
    for (int& h : hops) h = h == builder.kUnreached ? -1 : h;
    print_array("hops", hops);
    print_array("owners", builder.owners());
    std::cout << "\"num_local_nodes\": " << g.num_local_nodes << ",\n\"has_ghost_nodes\": "
              << (g.has_ghost_nodes() ? "true" : "false") << "\n}\n";
  } catch (const std::logic_error& err) {
    std::cout << "{\"error\": \"" << err.what() << "\"}\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace equiforce::lammps;
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "graph") return graph();
  if (command == "version" && argc == 4) {
    std::cout << lammps_version_string(std::atol(argv[2])) << "\n"
              << version_mismatch_note(std::atol(argv[2]), std::atol(argv[3]));
    return 0;
  }
  if (command == "sizes" && argc == 8) {
    int s[6];
    for (int k = 0; k < 6; ++k) s[k] = std::atoi(argv[2 + k]);
    std::cout << integer_size_mismatch(s[0], s[1], s[2], s[3], s[4], s[5]) << "\n";
    return 0;
  }
  std::cerr << "usage: plugin_parts_driver graph < input | version BUILT RUNNING | sizes T B I T B I\n";
  return 2;
}
