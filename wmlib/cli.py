"""``python -m wmlib COMMAND``: the book's library without Jupyter.

Commands:
  info                     versions, device, profile, rendering backend and a test frame
  mpc                      chapter 1: evaluate CEM / random shooting with the true simulator
  build CHAPTER...         execute chapter notebooks in a profile into build/
  train AGENT              chapter 3 (planet), 4 (dreamer), 5 (collodreamer), 6 (bird) or
                           TD-MPC (tdmpc, from the state) headless (checkpoints, resume)
  variants                 chapter 3: RNN, SSM, RSSM and latent overshooting on the same data
  compare-planners         chapter 5: every planner on chapter 4's world model
  world-models             chapter 2: the World Models pipeline on CarRacing (resumes)
  doom                     chapter 2, part two: C trained in M's dream of Take Cover (resumes)
  bench                    environment and planning throughput for each profile
  sweep [NAME]             a grid of train runs as Ray tasks (chapters 4-6's ablations and
                           comparison, or --agent and --variants), resumable

Every command takes ``--device`` (cpu, cuda, cuda:N; default: $WMLIB_DEVICE, else CUDA when
available, else the CPU) and ``--profile`` (smoke, quick, gpu, full; default: gpu on a GPU,
quick otherwise).
"""

from __future__ import annotations

import argparse
import sys


def cmd_info(args) -> int:
    import platform

    import numpy as np
    import torch

    from wmlib import __version__
    from wmlib.devices import default_device
    from wmlib.profiles import current_profile
    from wmlib.render import RenderingError, check_rendering, ensure_backend

    print(f"wmlib        {__version__}")
    print(f"python       {platform.python_version()} ({sys.executable})")
    print(f"torch        {torch.__version__}   numpy {np.__version__}")
    try:
        import dm_control  # noqa: F401
        import gymnasium
        import mujoco

        print(f"mujoco       {mujoco.__version__}   gymnasium {gymnasium.__version__}")
    except ImportError as e:
        print(f"missing      {e.name}: pip install -e . installs it")
    print(f"device       {default_device()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
    print(f"profile      {current_profile(args.profile)}")
    try:
        backend = ensure_backend()
        shape = check_rendering()
        print(f"rendering    MUJOCO_GL={backend}, test frame {shape}")
    except RenderingError as e:
        print(f"rendering    FAILED\n{e}")
        return 1
    return 0


def cmd_mpc(args) -> int:
    from wmlib.agents.mpc import evaluate_true_sim

    evaluate_true_sim(args.planner, profile=args.profile, seed=args.seed,
                      episodes=args.episodes, name=args.name)
    return 0


def cmd_build(args) -> int:
    import os

    from wmlib.build import build

    if args.requested_device:  # the notebooks' kernels are other processes: tell them
        os.environ["WMLIB_DEVICE"] = str(args.device)
    build(args.chapters, profile=args.profile, out=args.out, timeout=args.timeout)
    return 0


def cmd_assignments(args) -> int:
    from wmlib import assignments

    if args.action == "generate":
        for name, path in assignments.generate(args.chapters, args.out).items():
            print(f"{name}: student version {path}")
        print(f"instructor versions (nbgrader metadata) in {args.out}/source, "
              f"the gradebook in {args.out}/gradebook.db")
        return 0
    if not args.chapters or len(args.chapters) != 1:
        print("error: grade takes one folder of submissions: <folder>/<student>/<chapter>.ipynb",
              file=sys.stderr)
        return 2
    try:
        rows = assignments.grade(args.chapters[0], args.out, profile=args.profile or "smoke")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(assignments.table(rows))
    print(f"written to {args.out}/scores.csv")
    return 0


def cmd_bench(args) -> int:
    from wmlib.bench import main as bench

    bench(profiles=args.profiles, device=args.device)
    return 0


def cmd_train(args) -> int:
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from wmlib import loop
    from wmlib.agents import bird, collodreamer, dreamer, planet, tdmpc
    from wmlib.paths import show

    train = {"planet": planet.train, "dreamer": dreamer.train,
             "collodreamer": collodreamer.train, "bird": bird.train,
             "tdmpc": tdmpc.train}[args.agent]
    overrides = {"kind": args.kind} if args.kind else {}
    if args.action_repeat is not None:
        overrides["action_repeat"] = args.action_repeat
    if args.eval_every is not None:
        overrides["eval_every"] = args.eval_every
    if args.eval_episodes is not None:
        overrides["eval_episodes"] = args.eval_episodes
    if args.obs_norm:
        if not args.state:
            print("--obs-norm standardises state observations: add --state", file=sys.stderr)
            return 2
        overrides["obs_norm"] = True
    if args.preset and args.agent != "dreamer":
        print("--preset is Dreamer's (dreamerv2, dreamerv3)", file=sys.stderr)
        return 2
    if args.agent == "dreamer":
        overrides.update(state=args.state, ablation=args.ablation, preset=args.preset)
    elif args.agent == "collodreamer":
        if args.ablation:
            print("--ablation is Dreamer's; ColloDreamer takes --variant", file=sys.stderr)
            return 2
        overrides.update(state=args.state, variant=args.variant or "default",
                         init_from=args.init_from)
    elif args.agent == "bird":
        if args.ablation or args.init_from or args.variant not in (None, "bird", "soft-bird",
                                                                   "dreamer-fifo"):
            print("bird takes --variant (bird, soft-bird or dreamer-fifo) and --state",
                  file=sys.stderr)
            return 2
        overrides.update(state=args.state, variant=args.variant or "bird")
    elif args.agent == "tdmpc":  # always from the state (--state is accepted, and implied)
        if args.kind or args.ablation or args.obs_norm:
            print("tdmpc learns from the state with TOLD: --kind, --ablation and --obs-norm "
                  "are not its options", file=sys.stderr)
            return 2
    elif args.state or args.ablation:
        print("--state and --ablation are Dreamer's options (chapter 4)", file=sys.stderr)
        return 2
    if (args.variant or args.init_from) and args.agent not in ("collodreamer", "bird"):
        print("--variant and --init-from are ColloDreamer's and BIRD's options (chapters 5-6)",
              file=sys.stderr)
        return 2
    run_dir = args.run_dir or f"runs/{args.agent}"
    agent = train(args.profile, run_dir=run_dir, seed=args.seed, env_id=args.env,
                  episodes=args.episodes, progress=not args.no_progress,
                  device=args.device, **overrides)
    extra = None
    if args.final_episodes:
        extra = loop.final_evaluation(agent, args.final_episodes)
        agent.log(f"final evaluation, {args.final_episodes} episodes: "
                  f"{np.mean(extra['final_returns']):.1f} +- "
                  f"{np.std(extra['final_returns']):.1f} {extra['final_returns']}; random "
                  f"actions on the same seeds: {np.mean(extra['random_returns']):.1f} "
                  f"{extra['random_returns']}")
    if args.record:
        print(f"recorded in {show(loop.record_run(agent, args.record, extra=extra))}")
    return 0


def cmd_sweep(args) -> int:
    from wmlib import sweep

    try:
        definition = sweep.from_args(args.definition, args.agent, args.variants, args.name,
                                     args.state, seeds=args.seeds, profiles=args.profiles,
                                     envs=args.envs, episodes=args.episodes)
        specs = sweep.plan(definition, threads=max(1, round(args.cpus_per_run)),
                           device=args.requested_device)
        status = sweep.run_sweep(specs, cpus_per_run=args.cpus_per_run,
                                 gpus_per_run=args.gpus_per_run, address=args.address,
                                 num_cpus=args.num_cpus, progress=not args.no_progress)
    except sweep.SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(sweep.table(specs, status))
    return 1 if "failed" in status.values() else 0


def cmd_variants(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from wmlib.agents.planet_variants import run_experiment

    out = run_experiment(args.profile, names=args.names, seeds=args.seeds, device=args.device,
                         run_dir=args.run_dir, progress=not args.no_progress)
    for (name, seed), s in out.items():
        print(f"{name:10} seed {seed}: posterior {s['posterior_mse']:.5f}, open-loop 1/"
              f"{len(s['open_loop_mse'])} steps {s['open_loop_mse'][0]:.5f} "
              f"{s['open_loop_mse'][-1]:.5f} ({s['train_seconds']:.0f} s)")
    return 0


def cmd_compare_planners(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from wmlib.latent_mpc import run_comparison
    from wmlib.profiles import current_profile

    profile = current_profile(args.profile)
    run_comparison(profile, args.task, seeds=args.seeds, planners=args.planners,
                   record=args.record, device=args.device, progress=not args.no_progress)
    return 0


def cmd_world_models(args) -> int:
    from wmlib.agents.world_models import run

    overrides = {"workers": args.workers} if args.workers else {}
    if args.seed:
        overrides["seed"] = args.seed
    summary = run(args.profile, run_dir=args.run_dir, record=not args.no_record,
                  progress=not args.no_progress, device=args.device, **overrides)
    for k in ("real_zh", "real_z", "dream_zh", "random"):
        print(f"{k:9} {summary[k + '_mean']:7.1f} +- {summary[k + '_std']:.1f} "
              f"over {summary['eval_episodes']} tracks")
    return 0


def cmd_doom(args) -> int:
    from wmlib.agents.world_models_doom import run

    overrides = {"workers": args.workers} if args.workers else {}
    if args.seed:
        overrides["seed"] = args.seed
    summary = run(args.profile, run_dir=args.run_dir, record=not args.no_record,
                  progress=not args.no_progress, device=args.device,
                  temperatures=args.temperatures, **overrides)
    n = summary["eval_episodes"]
    print(f"{'tau':>5} {'in the dream':>16} {'in the real game':>18} {'random in the dream':>20}"
          f"  ({n} episodes each)")
    for row in summary["table"]:
        print(f"{row['temperature']:5.2f} {row['dream_mean']:8.1f} +- {row['dream_std']:5.1f} "
              f"{row['real_mean']:10.1f} +- {row['real_std']:5.1f} "
              f"{row['random_dream_mean']:10.1f} +- {row['random_dream_std']:5.1f}")
    print(f"random {'':15} {summary['random_mean']:10.1f} +- {summary['random_std']:5.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wmlib", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: $WMLIB_DEVICE, else CUDA when "
                             "available, else cpu)")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, **kw):
        return sub.add_parser(name, parents=[common], **kw)

    s = add("info", help="check the installation")
    s.add_argument("--profile", default=None)
    s.set_defaults(fn=cmd_info)
    s = add("mpc", help="chapter 1: MPC with the true simulator (which runs on the CPU)")
    s.add_argument("--planner", choices=["cem", "shooting"], default="cem")
    s.add_argument("--profile", default=None, help="smoke, quick, gpu or full (default: auto)")
    s.add_argument("--episodes", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--name", default=None, help="results/<name>.json (default from planner)")
    s.set_defaults(fn=cmd_mpc)
    s = add("build", help="execute chapter notebooks into build/")
    s.add_argument("chapters", nargs="*", help="notebook paths or chapter numbers (default: all)")
    s.add_argument("--profile", default="smoke")
    s.add_argument("--out", default="build")
    s.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    s.set_defaults(fn=cmd_build)
    s = add("train", help="train an agent headless (chapter 3: planet, chapter 4: dreamer, "
            "chapter 5: collodreamer, chapter 6: bird)")
    s.add_argument("agent", choices=["planet", "dreamer", "collodreamer", "bird", "tdmpc"])
    s.add_argument("--env", default=None, help="environment id (default: the config's)")
    s.add_argument("--profile", default=None, help="smoke, quick, gpu or full (default: auto)")
    s.add_argument("--action-repeat", type=int, default=None,
                   help="repeat each action this many times (default: the profile's)")
    s.add_argument("--run-dir", default=None,
                   help="checkpoint, replay and log (default: runs/<agent>)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--episodes", type=int, default=None, help="collected episodes (after seed)")
    s.add_argument("--kind", choices=["rnn", "ssm", "rssm"], default=None)
    s.add_argument("--eval-every", type=int, default=None,
                   help="evaluate every N collected episodes (default: the profile's)")
    s.add_argument("--eval-episodes", type=int, default=None,
                   help="episodes per evaluation (default: the profile's)")
    s.add_argument("--state", action="store_true",
                   help="dreamer, collodreamer: learn from the proprioceptive state instead "
                        "of pixels")
    s.add_argument("--obs-norm", action="store_true",
                   help="with --state: standardise each state dimension by the seed episodes' "
                        "mean and std (reacher: an angle of std ~20 beside a target offset "
                        "of std ~0.1)")
    s.add_argument("--ablation", default=None,
                   choices=["gaussian", "gaussian+balance", "categorical", "categorical+balance",
                            "categorical+trunc"],
                   help="dreamer: latents, KL balancing and actor (chapter 4's ablation, "
                        "wmlib.agents.dreamer.VARIANTS)")
    s.add_argument("--preset", default=None, choices=["dreamerv2", "dreamerv3"],
                   help="dreamer: DreamerV2's or DreamerV3's settings on the profile's sizes "
                        "(wmlib.agents.dreamer.PRESETS; chapters 4 and 7)")
    s.add_argument("--variant", default=None,
                   choices=["default", "no-bootstrap", "execution", "augmented", "bird",
                            "soft-bird", "dreamer-fifo"],
                   help="collodreamer: the value bootstrap, value training or eq. 11 "
                        "(chapter 5's ablation); bird: bird, soft-bird or dreamer-fifo "
                        "(chapter 6)")
    s.add_argument("--init-from", default=None,
                   help="collodreamer: a Dreamer run directory whose world model and replay "
                        "to start from (chapter 5 starts from chapter 4's)")
    s.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    s.add_argument("--record", default=None, help="write results/<RECORD>.json at the end")
    s.add_argument("--final-episodes", type=int, default=0,
                   help="after training, evaluate this many episodes (and random actions on "
                        "the same seeds) into the record")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_train)
    from wmlib.agents.planet_variants import VARIANTS

    s = add("variants", help="chapter 3: RNN, SSM, RSSM and latent overshooting trained on the "
            "same random episodes, open-loop errors recorded (resumes from --run-dir)")
    s.add_argument("--profile", default=None, help="smoke, quick, gpu or full (default: auto)")
    s.add_argument("--names", nargs="+", choices=list(VARIANTS), default=None,
                   help="variants to train (default: all); two processes can split them")
    s.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="default: the profile's seeds 0..n-1")
    s.add_argument("--run-dir", default=None, help="default: runs/ch03_variants_<profile>")
    s.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_variants)
    from wmlib.latent_mpc import PLANNERS, TASKS

    s = add("compare-planners", help="chapter 5: random shooting, CEM, MPPI, LatCo and "
            "ColloDreamer on chapter 4's trained state world model")
    s.add_argument("--task", default="swingup", choices=sorted(TASKS),
                   help="swingup and swingup_sparse plan on chapter 4's cartpole model; "
                   "reacher_easy on a state Dreamer trained on dmc:reacher-easy "
                   "(runs/dreamer_state_reacher_<profile>)")
    s.add_argument("--profile", default=None, help="smoke, quick, gpu or full (default: auto)")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    s.add_argument("--planners", nargs="+", choices=PLANNERS, default=None,
                   help="default: the task's (wmlib.latent_mpc.TASKS)")
    s.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    s.add_argument("--record", default=None, help="write results/<RECORD>.json at the end")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_compare_planners)
    s = add("world-models", help="chapter 2: rollouts, V, M, C (real and dream), "
            "evaluation; resumes from --run-dir")
    s.add_argument("--profile", default=None, help="smoke, quick, gpu or full (default: auto)")
    s.add_argument("--run-dir", default=None, help="default: runs/ch02_<profile>")
    s.add_argument("--workers", type=int, default=0, help="processes (0: the profile's)")
    s.add_argument("--no-record", action="store_true", help="do not write results/")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_world_models)
    s = add("doom", help="chapter 2, part two: rollouts of Take Cover, V, M, C evolved in the "
            "dream at each temperature, evaluation in the real game; resumes from --run-dir")
    s.add_argument("--profile", default=None, help="smoke, quick, gpu or full (default: auto)")
    s.add_argument("--run-dir", default=None,
                   help="default: runs/ch02_doom_<profile> (_seed<N> for seeds other than 0)")
    s.add_argument("--seed", type=int, default=0,
                   help="seed of the whole pipeline: rollouts, V, M, CMA-ES (default 0)")
    s.add_argument("--temperatures", type=float, nargs="+", default=None,
                   help="dream temperatures (default: the profile's, the paper's Table 2)")
    s.add_argument("--workers", type=int, default=0, help="processes (0: the profile's)")
    s.add_argument("--no-record", action="store_true", help="do not write results/")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_doom)
    s = add("assignments", help="course assignments: student versions of the chapters "
            "(nbgrader generate_assignment) and grading of submissions (nbgrader autograde)")
    s.add_argument("action", choices=["generate", "grade"])
    s.add_argument("chapters", nargs="*",
                   help="generate: chapter numbers or names (default: all); grade: the folder "
                        "of submissions, <folder>/<student>/<chapter>.ipynb")
    s.add_argument("--out", default="course", help="the nbgrader course folder")
    s.add_argument("--profile", default=None, help="grade: the profile the submissions run in "
                   "(default: smoke)")
    s.set_defaults(fn=cmd_assignments)
    s = add("sweep", help="a grid of train runs (agent and variant, seed, profile, env) as "
            "Ray tasks, one CPU each; runs already recorded are skipped, the others resume")
    s.add_argument("definition", nargs="?", default=None,
                   help="a sweep of the book: ch04_ablation, ch05_ablation or ch06_compare")
    s.add_argument("--agent", default=None, help="without a definition: the agent to sweep")
    s.add_argument("--variants", nargs="+", default=None,
                   help="without a definition: the agent's variants (dreamer: --ablation's, "
                        "collodreamer and bird: --variant's, planet: --kind's)")
    s.add_argument("--name", default=None, help="without a definition: the runs' prefix "
                   "(runs/<NAME>/, results/<NAME>_<variant>_seed<S>_<profile>.json)")
    s.add_argument("--state", action="store_true",
                   help="without a definition: learn from the state instead of pixels")
    s.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2")
    s.add_argument("--profiles", nargs="+", default=None, help="default: quick")
    s.add_argument("--envs", nargs="+", default=None, help="default: the configuration's")
    s.add_argument("--episodes", type=int, default=None)
    s.add_argument("--cpus-per-run", type=float, default=1.0,
                   help="CPUs Ray gives each run (also its torch threads)")
    s.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="the fraction of a GPU each run gets, e.g. 0.25 for four per GPU")
    s.add_argument("--address", default=None,
                   help="join the Ray cluster there (ray start --head prints it); default: "
                        "start a local Ray")
    s.add_argument("--num-cpus", type=int, default=None,
                   help="CPUs of the local Ray (default: all)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_sweep)
    s = add("bench", help="print throughput figures")
    s.add_argument("--profiles", nargs="*", default=["smoke", "quick", "gpu", "full"])
    s.set_defaults(fn=cmd_bench)
    args = p.parse_args(argv)
    from wmlib.devices import DeviceError, choose
    from wmlib.profiles import ProfileError, check_profile

    try:
        if getattr(args, "profile", None):
            check_profile(args.profile)
        for name in getattr(args, "profiles", None) or ():
            check_profile(name)
        args.requested_device = args.device
        args.device = choose(args.device)  # the session's device for every module
        return args.fn(args)
    except (ProfileError, DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
