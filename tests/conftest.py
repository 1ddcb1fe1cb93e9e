import os

os.environ.setdefault("WMLIB_PROFILE", "smoke")
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def cartpole():
    from wmlib import envs

    return envs.make("dmc:cartpole-swingup", pixels=False)
