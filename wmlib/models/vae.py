"""V: the convolutional variational autoencoder of World Models (Ha & Schmidhuber 2018).

V compresses each 64x64x3 frame o_t, independently of time, into a latent code z_t in R^32.
The encoder outputs a diagonal Gaussian q(z|o) = N(mu(o), diag(sigma(o)^2)); the decoder
maps z back to the mean of the image. With ``latent_dim=32, depth=32`` the model has
4,348,547 parameters, the count given in the paper for CarRacing.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from wmlib.nets import ConvDecoder, ConvEncoder


class VAE(nn.Module):
    """Convolutional VAE for images of shape (..., 3, 64, 64) with values in [-0.5, 0.5].

    The decoder mean is linear (no output squashing), as in PlaNet and Dreamer.
    """

    def __init__(self, latent_dim: int = 32, depth: int = 32, kl_tolerance: float = 0.5):
        super().__init__()
        self.latent_dim, self.kl_tolerance = latent_dim, kl_tolerance
        self.encoder = ConvEncoder(depth)
        self.mu = nn.Linear(self.encoder.embed_dim, latent_dim)
        self.logvar = nn.Linear(self.encoder.embed_dim, latent_dim)
        self.decoder = ConvDecoder(latent_dim, depth)

    def encode(self, x: torch.Tensor) -> Normal:
        """q(z|o) = N(mu, exp(logvar)), a Normal of batch shape (..., latent_dim)."""
        h = self.encoder(x)  # under bf16 autocast the heads' outputs are cast back to float32
        return Normal(self.mu(h).float(), torch.exp(0.5 * self.logvar(h).float()))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of p(o|z), shape (..., 3, 64, 64) (float32, also under bf16 autocast)."""
        return self.decoder(z).float()

    def sample(self, n: int) -> torch.Tensor:
        """Decode n draws of the prior z ~ N(0, I)."""
        return self.decode(torch.randn(n, self.latent_dim, device=self.mu.weight.device))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Normal]:
        """Reconstruct x from a reparameterised sample z = mu + sigma * eps, eps ~ N(0, I)."""
        posterior = self.encode(x)
        return self.decode(posterior.rsample()), posterior

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The World Models VAE loss, averaged over the batch:

            L = sum_pixels (o - o_hat)^2 + max(KL(q(z|o) || N(0, I)), kl_tolerance * latent_dim)
            KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)

        The max is taken per image (KL tolerance, or "free bits": once the KL is below
        kl_tolerance nats per latent dimension, it is no longer penalised). Returns the total
        ``loss``, the reconstruction error ``recon`` and the unclamped ``kl``, each a mean
        over the batch.
        """
        x_hat, posterior = self(x)
        recon = (x - x_hat).pow(2).flatten(-3).sum(-1)
        prior = Normal(torch.zeros_like(posterior.loc), torch.ones_like(posterior.scale))
        kl = kl_divergence(posterior, prior).sum(-1)
        kl_loss = kl.clamp(min=self.kl_tolerance * self.latent_dim)
        return {"loss": (recon + kl_loss).mean(), "recon": recon.mean(), "kl": kl.mean()}
