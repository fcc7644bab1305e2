// run_deployed_model MODEL.pt|MODEL.pt2 INPUT.bin N OUTPUT.bin
// INPUT: float64 positions [N, 3], then int64 species [N], then float64 cell [3, 3]; periodic in
// all directions. OUTPUT: float64 [energy, forces (3N), virial (9)]. Uses csrc/runtime only.
#include <fstream>
#include <iostream>
#include <vector>

#include "model.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: run_deployed_model MODEL.pt INPUT.bin N OUTPUT.bin\n";
    return 2;
  }
  try {
    equiforce::runtime::Model model(argv[1]);
    const int64_t n = std::stoll(argv[3]);
    std::vector<double> pos(3 * n), cell(9);
    std::vector<int64_t> species(n);
    std::ifstream in(argv[2], std::ios::binary);
    in.read(reinterpret_cast<char*>(pos.data()), pos.size() * sizeof(double));
    in.read(reinterpret_cast<char*>(species.data()), species.size() * sizeof(int64_t));
    in.read(reinterpret_cast<char*>(cell.data()), cell.size() * sizeof(double));
    const auto out = model.compute(torch::from_blob(pos.data(), {n, 3}, torch::kFloat64),
                                   torch::from_blob(species.data(), {n}, torch::kInt64),
                                   torch::from_blob(cell.data(), {3, 3}, torch::kFloat64),
                                   torch::ones({3}, torch::kBool));
    std::ofstream o(argv[4], std::ios::binary);
    o.write(reinterpret_cast<const char*>(&out.energy), sizeof(double));
    for (const at::Tensor& t : std::vector<at::Tensor>{out.forces.to(at::kDouble).contiguous(),
                                                       out.virial.to(at::kDouble).contiguous()})
      o.write(reinterpret_cast<const char*>(t.data_ptr<double>()), t.numel() * sizeof(double));
    std::cout << "species:";
    for (const auto& s : model.metadata().species) std::cout << " " << s;
    std::cout << " ghost_cutoff " << model.metadata().ghost_cutoff << " format " << model.metadata().format << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
