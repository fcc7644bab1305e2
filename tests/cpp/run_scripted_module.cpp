// run_scripted_module OPS_LIBRARY MODULE.pt INPUT.bin N OUTPUT.bin
// INPUT holds float64 positions [N, 3]; the module maps them to a scalar E. OUTPUT receives
// float64 [E, dE/dx (3N), H v (3N)] with v = all ones.
#include <dlfcn.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include <fstream>
#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: run_scripted_module OPS_LIBRARY MODULE.pt INPUT.bin N OUTPUT.bin\n";
    return 2;
  }
  // The ops must be registered before the module is deserialised ("Unknown builtin op" otherwise).
  if (!dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) {
    std::cerr << "dlopen failed: " << dlerror() << "\n";
    return 3;
  }
  const int64_t n = std::stoll(argv[4]);
  std::vector<double> buffer(3 * n);
  std::ifstream(argv[3], std::ios::binary).read(reinterpret_cast<char*>(buffer.data()), buffer.size() * sizeof(double));
  try {
    auto module = torch::jit::load(argv[2]);
    auto x = torch::from_blob(buffer.data(), {n, 3}, torch::kFloat64).clone().requires_grad_(true);
    auto energy = module.forward({x}).toTensor();
    auto grad = torch::autograd::grad({energy}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    auto hvp = torch::autograd::grad({(grad * torch::ones_like(grad)).sum()}, {x})[0];
    std::ofstream out(argv[5], std::ios::binary);
    const double e = energy.item<double>();
    out.write(reinterpret_cast<const char*>(&e), sizeof(double));
    for (const at::Tensor& t : std::vector<at::Tensor>{grad.contiguous(), hvp.contiguous()})
      out.write(reinterpret_cast<const char*>(t.data_ptr<double>()), t.numel() * sizeof(double));
  } catch (const std::exception& err) {
    std::cerr << "error: " << err.what() << "\n";
    return 1;
  }
  return 0;
}
