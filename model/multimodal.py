"""Multimodal synthesis (paper section 3.3): the feature encoder E and per-class feature GMMs.

E (pix2pixHD's encoder-decoder) maps a real frame to a ``feat_nc``-channel feature map (d = 3 in
the paper) that is averaged inside every instance (stuff classes: inside every class region);
these maps join the semantic input of G, so at training time G learns to render an object from its
feature vector. After training, a Gaussian mixture is fitted per class to the instance features of
the training set and saved with the checkpoint; at test time sampling a vector per instance from
its class's mixture gives different, consistent appearances (one instance or class resampled while
the rest stay fixed).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model.blocks import conv7, decoder, encoder, norm_layer

INSTANCE_DIVISOR = 1000


class FeatureEncoder(nn.Module):
    def __init__(self, feat_nc: int = 3, ngf: int = 16, n_down: int = 4, norm: str = "instance") -> None:
        super().__init__()
        norm_cls = norm_layer(norm)
        self.net = nn.Sequential(encoder(3, ngf, n_down, norm_cls), decoder(ngf, n_down, norm_cls),
                                 conv7(ngf, feat_nc, None, activation=False), nn.Tanh())

    def forward(self, frames: torch.Tensor, instances: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, H, W) in [-1, 1], instances (B, H, W) -> instance-averaged (B, feat_nc, H, W)."""
        return instance_average(self.net(frames), instances)


def instance_average(features: torch.Tensor, instances: torch.Tensor) -> torch.Tensor:
    """Replace every pixel's feature by the mean over its instance (per batch element)."""
    b, c, h, w = features.shape
    ids = instances.long()
    ids = ids + torch.arange(b, device=ids.device).view(b, 1, 1) * (int(ids.max()) + 1)
    unique, inverse = torch.unique(ids.reshape(-1), return_inverse=True)
    flat = features.permute(0, 2, 3, 1).reshape(-1, c)
    sums = torch.zeros(len(unique), c, device=features.device, dtype=flat.dtype).index_add_(0, inverse, flat)
    counts = torch.bincount(inverse, minlength=len(unique)).clamp_min(1).to(flat.dtype)
    return (sums / counts[:, None])[inverse].reshape(b, h, w, c).permute(0, 3, 1, 2)


def instance_vectors(features: torch.Tensor, instances: torch.Tensor) -> dict[int, list[np.ndarray]]:
    """{labelId: [feature vector of each instance]} from instance-averaged maps."""
    found: dict[int, list[np.ndarray]] = {}
    for feat, inst in zip(features, instances):
        for instance_id in torch.unique(inst).tolist():
            mask = inst == instance_id
            found.setdefault(label_of(instance_id), []).append(feat[:, mask].mean(1).float().cpu().numpy())
    return found


def fit_class_gmms(vectors: dict[int, list[np.ndarray]], max_components: int = 10, seed: int = 0) -> dict:
    """A Gaussian mixture per class (scikit-learn, full covariances, regularised)."""
    from sklearn.mixture import GaussianMixture

    gmms = {}
    for label, vecs in sorted(vectors.items()):
        data = np.stack(vecs)
        if len(data) < 2:  # one instance seen: a narrow Gaussian around it
            dim = data.shape[1]
            gmms[label] = {"weights": np.ones(1), "means": data, "covariances": np.eye(dim)[None] * 1e-4,
                           "count": 1}
            continue
        k = max(1, min(max_components, len(data) // 2))
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(data)
        gmms[label] = {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_,
                       "count": len(data)}
    return gmms


def label_of(instance_id: int) -> int:
    return instance_id // INSTANCE_DIVISOR if instance_id >= INSTANCE_DIVISOR else instance_id


def draw_vector(gmms: dict, label: int, feat_nc: int, rng: np.random.Generator) -> np.ndarray:
    """One feature vector from the class's mixture (zeros for a class never seen in training)."""
    if label not in gmms:
        return np.zeros(feat_nc)
    g = gmms[label]
    component = rng.choice(len(g["weights"]), p=np.asarray(g["weights"]) / np.sum(g["weights"]))
    return rng.multivariate_normal(g["means"][component], g["covariances"][component])


def sample_features(instances: torch.Tensor, gmms: dict, feat_nc: int, seed: int = 0,
                    fixed: dict[int, np.ndarray] | None = None) -> torch.Tensor:
    """A (B, feat_nc, H, W) feature map with one vector per instance drawn from its class's mixture;
    ``fixed`` {instance id: vector} keeps chosen instances (resample one, fix the rest)."""
    rng = np.random.default_rng(seed)
    fixed = fixed or {}
    out = torch.zeros(instances.shape[0], feat_nc, *instances.shape[1:])
    for instance_id in torch.unique(instances).tolist():
        vector = fixed[instance_id] if instance_id in fixed else draw_vector(gmms, label_of(instance_id), feat_nc, rng)
        mask = (instances == instance_id).unsqueeze(1).expand(-1, feat_nc, -1, -1)
        out[mask] = torch.as_tensor(vector, dtype=out.dtype).view(1, feat_nc, 1, 1).expand_as(out)[mask]
    return out
