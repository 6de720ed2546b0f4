"""Training speed on this machine: seconds per kimg of the StyleGAN2-ADA training step, ours and optionally
the official implementation's (a local clone of NVlabs/stylegan2-ada-pytorch given with ``--official``).

Each phase of the official schedule (Gmain, Greg, Dmain, Dreg) is timed as the training loop runs it —
zero the gradients, forward and backward through the loss, optimizer step (each loop's own Adam: ours fused,
the official one PyTorch's default) — and combined per minibatch:

    with regularisation:    Gmain + Dmain + Greg / 4 + Dreg / 16   (lazy intervals 4 and 16)
    without regularisation: Gmain + Dmain                           (pl_weight 0, gamma 0)

sec/kimg = that time · 1000 / batch. Runs of both implementations are interleaved (ABAB...) and the
median is reported, so load from other processes on a shared machine hits both alike. With ``--official``
both start from the same weights and see the same batch and random numbers; the losses of each phase are
printed side by side and must agree.

    python benchmarks/training_speed.py                       # ours, 32² and 64²
    python benchmarks/training_speed.py --official /tmp/stylegan2-ada-pytorch --threads 1
    python benchmarks/training_speed.py --no-winograd         # ours with direct 3×3 convolutions only
    python benchmarks/training_speed.py --preset auto256 --device cuda --official PATH    # on a GPU
    python benchmarks/training_speed.py --preset paper256 --device cuda --official PATH

On CUDA both run as the official training loop sets PyTorch up: cuDNN autotuning on, TF32 off
(``--allow-tf32`` allows it for both). ``--batch-gpu`` splits the batch into accumulated passes, as the
loops do when the batch per GPU is smaller than the batch.

The glibc allocator setting that ``stylegan train`` makes (``stylegan.ops.allocator``) is made here for the
whole process, so the official code runs with it too; ``--no-tune-allocator`` leaves malloc alone for both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_info import cpu_summary  # noqa: E402
from stylegan.networks import Discriminator, Generator  # noqa: E402
from stylegan.ops import winograd  # noqa: E402
from stylegan.ops.allocator import tune_cpu_allocator  # noqa: E402
from stylegan.ops.backends import cuda_arithmetic  # noqa: E402
from stylegan.training.phases import adam, on_device  # noqa: E402
from stylegan.training.loss import LossConfig, StyleGAN2Loss  # noqa: E402

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")
LOSS_KEYS = ("Loss/G/loss", "Loss/pl_penalty", "Loss/D/loss", "Loss/r1_penalty")


PRESETS = {
    # What the official README's "expected training time" table ran: --cfg=auto, which at 256² on one GPU
    # resolves to a batch of 16 in one pass, minibatch-std groups of 4, a 2-layer mapping and gamma 0.8192.
    "auto256": dict(res=[256], cbase=16384, cmax=512, map=2, batch=16, batch_gpu=16, mbstd=4, gamma=0.8192,
                    fp16_res=4, conv_clamp=256.0),
    # paper256 as the official train.py defines it (FFHQ / LSUN Cat at 256²); on one GPU its batch of 64
    # runs as 8 accumulated passes of 8 (batch / ref_gpus).
    "paper256": dict(res=[256], cbase=16384, cmax=512, map=8, batch=64, batch_gpu=8, mbstd=8, gamma=1.0,
                     fp16_res=4, conv_clamp=256.0),
}
# That table at 256² (Tesla V100, --cfg=auto --aug=ada), sec/kimg by GPU count. Its figures come from the
# whole loop (data loading, ADA, EMA, metrics); this benchmark times the training step alone.
OFFICIAL_README_256 = {1: "21.6–24.2", 2: "11.2–11.8", 4: "5.6–5.9", 8: "4.4–5.5"}


def network_kwargs(res: int, args) -> tuple[dict, dict]:
    G = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
             mapping_kwargs=dict(num_layers=args.map),
             synthesis_kwargs=dict(channel_base=args.cbase, channel_max=args.cmax, num_fp16_res=args.fp16_res,
                                   conv_clamp=args.conv_clamp))
    D = dict(c_dim=0, img_resolution=res, img_channels=3, channel_base=args.cbase, channel_max=args.cmax,
             num_fp16_res=args.fp16_res, conv_clamp=args.conv_clamp,
             epilogue_kwargs=dict(mbstd_group_size=args.mbstd))
    return G, D


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def official_adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """The optimizer the official training loop builds: PyTorch's default Adam."""
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=1e-8)


class Runner:
    """One implementation's G, D, optimizers and loss; ``phase(name)`` runs and times one training phase.

    ``make_adam(params, lr, betas)`` is the implementation's own optimizer, with the lazy-regularisation
    correction of lr and betas applied here as both training loops apply it.
    """

    def __init__(self, name, G, D, make_loss, accumulate, pop_losses, device, make_adam, batch_gpu):
        self.name, self.G, self.D, self.device, self.batch_gpu = name, G, D, device, batch_gpu
        r = {"G": 4 / 5, "D": 16 / 17}
        self.opts = {k: make_adam(list(m.parameters()), 0.0025 * r[k], (0.0, 0.99 ** r[k]))
                     for k, m in (("G", G), ("D", D))}
        self.loss = make_loss(G, D)
        self._accumulate, self._pop_losses = accumulate, pop_losses

    def phase(self, name: str, batch: dict, seed: int) -> tuple[float, dict[str, float]]:
        module, opt = (self.G, self.opts["G"]) if name[0] == "G" else (self.D, self.opts["D"])
        torch.manual_seed(seed)  # same noise, mixing and PL directions for both implementations
        synchronize(self.device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)  # only the trained network collects gradients in this phase
        gain = {"Gmain": 1, "Dmain": 1, "Greg": 4, "Dreg": 16}[name]
        passes = zip(*(v.split(self.batch_gpu) for v in batch.values()))
        for chunk in passes:  # gradients accumulate over the passes, as in both loops
            self._accumulate(self.loss, name, dict(zip(batch, chunk)), gain)
        module.requires_grad_(requires_grad=False)
        for p in module.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        synchronize(self.device)
        return time.perf_counter() - start, self._pop_losses(self.loss)


def our_runner(res: int, args, gamma: float, pl_weight: float) -> Runner:
    G_kwargs, D_kwargs = network_kwargs(res, args)
    torch.manual_seed(0)
    G, D = Generator(**G_kwargs).train().to(args.device), on_device(Discriminator(**D_kwargs).train(), args.device)
    G.requires_grad_(False), D.requires_grad_(False)

    def make_loss(G, D):
        return StyleGAN2Loss(G, D, None, LossConfig(r1_gamma=gamma, pl_weight=pl_weight))

    def accumulate(loss, name, b, gain):
        loss.accumulate_gradients(name, b["real"], b["c"], b["z"], b["c"], gain=gain)

    def pop(loss):
        return {k: float(torch.cat(v).mean()) for k, v in loss.pop_stats().items() if k in LOSS_KEYS}

    return Runner("ours", G, D, make_loss, accumulate, pop, args.device, adam, args.batch_gpu)


def official_runner(root: Path, ours: Runner, res: int, args, gamma: float, pl_weight: float) -> Runner:
    """The official networks and loss from a clone at ``root``, holding a copy of our weights."""
    sys.path.insert(0, str(root))
    from torch_utils import training_stats  # noqa: E402  (the official package, found through root)
    from training.loss import StyleGAN2Loss as OfficialLoss
    from training.networks import Discriminator as OfficialD
    from training.networks import Generator as OfficialG

    G_kwargs, D_kwargs = network_kwargs(res, args)
    G, D = OfficialG(**G_kwargs).train().to(args.device), OfficialD(**D_kwargs).train().to(args.device)
    G.load_state_dict(ours.G.state_dict())
    D.load_state_dict(ours.D.state_dict())
    G.requires_grad_(False), D.requires_grad_(False)
    reported: dict[str, list[torch.Tensor]] = {}

    def report(name, value):  # capture what the official loss reports
        if name in LOSS_KEYS:
            reported.setdefault(name, []).append(torch.as_tensor(value).detach().flatten().float())
        return value

    training_stats.report = report
    import training.loss as loss_module
    loss_module.training_stats.report = report

    def make_loss(G, D):
        return OfficialLoss(device=args.device, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
                            r1_gamma=gamma, pl_weight=pl_weight)

    def accumulate(loss, name, b, gain):
        loss.accumulate_gradients(phase=name, real_img=b["real"], real_c=b["c"], gen_z=b["z"], gen_c=b["c"],
                                  sync=True, gain=gain)

    def pop(loss):
        out = {k: float(torch.cat(v).mean()) for k, v in reported.items()}
        reported.clear()
        return out

    return Runner("official", G, D, make_loss, accumulate, pop, args.device, official_adam, args.batch_gpu)


def benchmark(res: int, args, regularise: bool) -> None:
    gamma, pl_weight = (args.gamma, 2.0) if regularise else (0.0, 0.0)
    runners = [our_runner(res, args, gamma, pl_weight)]
    if args.official:
        runners.append(official_runner(Path(args.official), runners[0], res, args, gamma, pl_weight))
    g = torch.Generator().manual_seed(1)
    batch = dict(z=torch.randn([args.batch, 512], generator=g), c=torch.zeros([args.batch, 0]),
                 real=torch.rand([args.batch, 3, res, res], generator=g) * 2 - 1)
    batch = {k: v.to(args.device) for k, v in batch.items()}
    phases = PHASES if regularise else ("Gmain", "Dmain")
    times = {r.name: {p: [] for p in phases} for r in runners}
    losses = {r.name: {} for r in runners}
    start = {"G": runners[0].G.state_dict(), "D": runners[0].D.state_dict()}
    start = {k: {n: t.clone() for n, t in v.items()} for k, v in start.items()}
    for rep in range(args.repeats + 1):  # the first round warms up (allocator, caches) and is not timed
        for phase in phases:
            for r in (runners if rep % 2 == 0 else runners[::-1]):
                if rep == 0:  # every phase's losses compared from the same starting weights
                    r.G.load_state_dict(start["G"])
                    r.D.load_state_dict(start["D"])
                sec, got = r.phase(phase, batch, seed=1000 * rep + PHASES.index(phase))
                if rep > 0:
                    times[r.name][phase].append(sec)
                if rep == 0:
                    losses[r.name][phase] = got
    label = f"{res}x{res}, {'with' if regularise else 'without'} regularisation"
    per_batch = {}
    for r in runners:
        med = {p: statistics.median(v) for p, v in times[r.name].items()}
        per_batch[r.name] = med["Gmain"] + med["Dmain"] + (med["Greg"] / 4 + med["Dreg"] / 16 if regularise else 0)
        phase_text = "  ".join(f"{p} {med[p]:.3f}s" for p in phases)
        print(f"{label:<36s} {r.name:<9s} {per_batch[r.name] * 1000 / args.batch:8.1f} sec/kimg   ({phase_text})",
              flush=True)
    if args.official:
        print(f"{'':<36s} speed-up  {per_batch['official'] / per_batch['ours']:.2f}x")
        for phase in phases:
            a, b = losses["ours"][phase], losses["official"][phase]
            text = ", ".join(f"{k.split('/', 1)[1]} {a[k]:.6f} vs {b.get(k, float('nan')):.6f}" for k in a)
            print(f"{'':<36s} {phase:<6s} losses (ours vs official, same weights): {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a whole configuration (e.g. paper256 on CUDA); "
                        "options given explicitly still win")
    parser.add_argument("--res", type=int, nargs="+")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--batch-gpu", type=int, help="samples per pass (default: the whole batch at once)")
    parser.add_argument("--cbase", type=int)
    parser.add_argument("--cmax", type=int)
    parser.add_argument("--map", type=int)
    parser.add_argument("--mbstd", type=int, help="minibatch-std group size")
    parser.add_argument("--gamma", type=float)
    parser.add_argument("--fp16-res", type=int, help="highest resolutions in fp16 (CUDA only; on the CPU both run fp32)")
    parser.add_argument("--conv-clamp", type=float)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--allow-tf32", action="store_true", help="let both use TF32 on CUDA (off, as officially)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--official", metavar="DIR", help="a clone of NVlabs/stylegan2-ada-pytorch to run beside ours")
    parser.add_argument("--no-reg", action="store_true", help="only the runs without regularisation")
    parser.add_argument("--no-winograd", action="store_true", help="direct 3×3 convolutions only (as before)")
    parser.add_argument("--no-tune-allocator", action="store_true", help="leave glibc malloc as it is")
    args = parser.parse_args()
    defaults = dict(res=[32, 64], batch=8, batch_gpu=None, cbase=8192, cmax=256, map=2, mbstd=4, gamma=1.0,
                    fp16_res=0, conv_clamp=None)
    defaults.update(PRESETS.get(args.preset, {}))
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.batch_gpu = args.batch_gpu or args.batch
    if args.batch % args.batch_gpu:
        parser.error(f"--batch-gpu {args.batch_gpu} does not divide --batch {args.batch}")
    args.device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    winograd.set_enabled(not args.no_winograd)
    # Process-wide, so the official code (in this same process) gets the same allocator.
    tuned = False if args.no_tune_allocator else tune_cpu_allocator()
    if args.device.type != "cuda":
        # Our networks compute fp32 on the CPU whatever num_fp16_res says; the official ones would emulate
        # fp16 there, about 80× slower (measured at 32²), which would compare different arithmetic.
        args.fp16_res = 0
    precision = f"fp16 in the top {args.fp16_res} resolutions" if args.fp16_res else "fp32"
    passes = f" in passes of {args.batch_gpu}" if args.batch_gpu < args.batch else ""
    where = (f"{torch.cuda.get_device_name(args.device)}, TF32 {'on' if args.allow_tf32 else 'off'}"
             if args.device.type == "cuda" else f"{torch.get_num_threads()} thread(s)")
    print(f"# {cpu_summary()}")
    print(f"torch {torch.__version__}, {args.device}, {where}, batch {args.batch}{passes}, cbase {args.cbase}, "
          f"cmax {args.cmax}, map {args.map}, mbstd {args.mbstd}, {precision}, median of {args.repeats}, "
          f"winograd {'on' if winograd.is_enabled() else 'off'}, allocator {'tuned' if tuned else 'default'}")
    with cuda_arithmetic(benchmark=True, allow_tf32=args.allow_tf32):  # as both training loops set it
        for res in args.res:
            for regularise in ([False] if args.no_reg else [False, True]):
                benchmark(res, args, regularise)
    if args.device.type == "cuda" and 256 in args.res:
        print("official README, 256², Tesla V100, --cfg=auto (the auto256 preset), whole loop with ADA: " +
              ", ".join(f"{n} GPU(s) {t} sec/kimg" for n, t in OFFICIAL_README_256.items()))


if __name__ == "__main__":
    main()
