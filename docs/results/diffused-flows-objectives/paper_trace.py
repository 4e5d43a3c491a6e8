"""Per-step trace of the `paper` objective (eq. 4.6 as printed) on the objectives' budget: latent RMS,
log|det| per dim, the loss and the bound, until the loss is no longer finite."""
import json, math, sys
import torch
from nfzoo.training.trainer import TrainConfig, Trainer, Callback
from nfzoo.errors import TrainingDivergedError


def main() -> None:
    cfg = TrainConfig(arch="diffused-flows", dataset="digits", epochs=40, batch_size=64, lr=1e-3, lr_schedule="cosine",
                      grad_clip=1.0, seed=0, model={"objective": "paper", "levels": 2, "steps": 4, "hidden": 32,
                                                    "unet_channels": [16, 32]})
    trace = []
    class CB(Callback):
        def on_step(self, step, loss, bpd, it_s):
            m = t.model
            rms = math.sqrt(m._scale_sum / m._scale_n); ld = m._ld_sum / m._scale_n / m.dim
            m._scale_sum, m._scale_n, m._ld_sum = 0.0, 0, 0.0
            trace.append({"step": step, "loss_bits_per_dim": loss, "bound_bpd": bpd, "latent_rms": rms,
                          "logdet_per_dim": ld})
    t = Trainer(cfg, sys.argv[1], CB())
    try:
        t.run()
    except TrainingDivergedError as exc:
        trace.append({"stopped": str(exc)})
    json.dump(trace, open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
