"""Chapter 2's agent: World Models (Ha & Schmidhuber 2018) on CarRacing, V + M + C (and, with
the settings of :mod:`wmlib.agents.world_models_doom`, on VizDoom's Take Cover).

The training procedure of the paper (Ha and Schmidhuber 2018, arXiv:1803.10122, its CarRacing
experiment; the CarRacing table also appears in J. Vitay's lecture "Planning with learned world
models", TU Chemnitz), one module per stage:

1. collect random rollouts (:func:`collect_rollouts`, `rollouts`), with the original's random
   policy: an untrained V and M and a controller whose parameters are Cauchy noise of scale
   U(0, 0.01);
2. train V, the VAE, on the frames (:func:`train_vae`, `vision`);
3. encode every frame to (mu, log sigma^2) (:func:`encode_dataset`, `vision`);
4. train M, the MDN-RNN, on the encoded sequences and the actions (:func:`train_mdnrnn`,
   `memory`);
5. evolve C with CMA-ES, in the real environment (:func:`train_controller` with
   ``where="real"``) or inside M's dream (``where="dream"``; `controller`);
6. evaluate C on N random tracks, full-length episodes (:func:`evaluate_controller`,
   `evaluation`).

`config` holds the configuration and the run directory, `game` the environment, V, M and C
built from a configuration and the policies that play, `pipeline` the whole run. Each stage
writes its output under one run directory (``runs/ch02_<profile>`` by default) and a rerun
resumes from what exists: rollout files already written are skipped, V, M and the CMA-ES
searches continue from their checkpoints, finished evaluations are read back. :func:`run`
chains them and writes ``results/ch02_world_models_<profile>.json``.

Every name is importable from here (``from wmlib.agents import world_models as wm``).
"""

from wmlib.agents.world_models.config import (
    CONFIGS,
    DATA_SEED,
    EVAL_SEED,
    SELECT_SEED,
    Run,
    WorldModelsConfig,
    default_run_dir,
)
from wmlib.agents.world_models.controller import train_controller
from wmlib.agents.world_models.evaluation import evaluate_controller
from wmlib.agents.world_models.game import (
    OriginalRandomPolicy,
    RepeatedRandomPolicy,
    WorldModelsPolicy,
    make_controller,
    make_env,
    make_mdnrnn,
    make_vae,
    random_data_policy,
    run_policy,
    speed_up_car_racing,
)
from wmlib.agents.world_models.memory import (
    StatefulStreams,
    load_mdnrnn,
    sequence_batch,
    train_mdnrnn,
)
from wmlib.agents.world_models.pipeline import record_results, run, summarize
from wmlib.agents.world_models.rollouts import collect_rollouts, load_rollout
from wmlib.agents.world_models.vision import encode_dataset, load_vae, train_vae

__all__ = ["CONFIGS", "DATA_SEED", "EVAL_SEED", "SELECT_SEED", "OriginalRandomPolicy",
           "RepeatedRandomPolicy", "Run", "StatefulStreams", "WorldModelsConfig",
           "WorldModelsPolicy", "collect_rollouts", "default_run_dir", "encode_dataset",
           "evaluate_controller", "load_mdnrnn", "load_rollout", "load_vae", "make_controller",
           "make_env", "make_mdnrnn", "make_vae", "random_data_policy", "record_results", "run",
           "run_policy", "sequence_batch", "speed_up_car_racing", "summarize",
           "train_controller", "train_mdnrnn", "train_vae"]
