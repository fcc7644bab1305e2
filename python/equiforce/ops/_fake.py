"""Fake (meta) kernels: output shapes and dtypes of every op, for torch.export / torch.compile."""
import torch


@torch.library.register_fake("equiforce::spherical_harmonics")
def _(vectors, lmax, normalize, normalization):
    return vectors.new_empty((vectors.shape[0], (lmax + 1) ** 2))


@torch.library.register_fake("equiforce::spherical_harmonics_backward")
def _(grad_out, vectors, lmax, normalize, normalization):
    return torch.empty_like(vectors)


@torch.library.register_fake("equiforce::spherical_harmonics_double_backward")
def _(grad_grad_vectors, grad_out, vectors, lmax, normalize, normalization):
    return torch.empty_like(grad_out), torch.empty_like(vectors)


@torch.library.register_fake("equiforce::tensor_product")
def _(x1, x2, weight, descriptor, coefficients, dim_out):
    return x1.new_empty((x1.shape[0], dim_out))


@torch.library.register_fake("equiforce::tensor_product_backward")
def _(grad_out, x1, x2, weight, descriptor, coefficients):
    return torch.empty_like(x1), torch.empty_like(x2), torch.empty_like(weight)


@torch.library.register_fake("equiforce::tensor_product_double_backward")
def _(gg1, gg2, ggw, grad_out, x1, x2, weight, descriptor, coefficients):
    return torch.empty_like(grad_out), torch.empty_like(x1), torch.empty_like(x2), torch.empty_like(weight)


@torch.library.register_fake("equiforce::conv")
def _(x, edge_attr, edge_weight, edge_src, edge_dst, num_nodes, descriptor, coefficients, dim_out):
    return x.new_empty((num_nodes, dim_out))


@torch.library.register_fake("equiforce::conv_backward")
def _(grad_out, x, edge_attr, edge_weight, edge_src, edge_dst, descriptor, coefficients):
    return torch.empty_like(x), torch.empty_like(edge_attr), torch.empty_like(edge_weight)


@torch.library.register_fake("equiforce::conv_double_backward")
def _(ggx, gga, ggw, grad_out, x, edge_attr, edge_weight, edge_src, edge_dst, descriptor, coefficients):
    return (torch.empty_like(grad_out), torch.empty_like(x), torch.empty_like(edge_attr),
            torch.empty_like(edge_weight))


@torch.library.register_fake("equiforce::neighbor_list")
def _(positions, cell, pbc, cutoff, self_interaction):
    pairs = torch.library.get_ctx().new_dynamic_size()
    i = positions.new_empty((pairs,), dtype=torch.long)
    return i, torch.empty_like(i), positions.new_empty((pairs, 3), dtype=torch.long)
