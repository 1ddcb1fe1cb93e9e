from dataclasses import dataclass, replace

import pytest
import torch

from wmlib.training import CheckpointMismatch, History, load_checkpoint, save_checkpoint, train_loop


@dataclass(frozen=True)
class Cfg:
    hidden: int = 8
    lr: float = 0.1


def make():
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1)
    return net, torch.optim.SGD(net.parameters(), lr=0.1)


def test_checkpoint_round_trip(tmp_path):
    net, opt = make()
    h = History()
    h.log(3, loss=1.5)
    save_checkpoint(tmp_path / "c.pt", Cfg(), 3, {"net": net, "opt": opt}, h)
    net2 = torch.nn.Linear(2, 1)
    h2 = History()
    state = load_checkpoint(tmp_path / "c.pt", Cfg(), {"net": net2}, h2)
    assert state["step"] == 3 and h2["loss"] == ([3], [1.5])
    assert torch.equal(net.weight, net2.weight)


def test_checkpoint_from_another_configuration_is_refused(tmp_path):
    net, _ = make()
    save_checkpoint(tmp_path / "c.pt", Cfg(), 1, {"net": net})
    with pytest.raises(CheckpointMismatch, match=r"hidden: checkpoint 8, now 16"):
        load_checkpoint(tmp_path / "c.pt", replace(Cfg(), hidden=16), {"net": net})


def test_interrupted_training_saves_and_resumes(tmp_path):
    net, opt = make()
    x, y = torch.randn(64, 2), torch.randn(64, 1)

    def update(step, stop_at=None):
        if step == stop_at:
            raise KeyboardInterrupt
        loss = (net(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    mods = {"net": net, "opt": opt}
    h = train_loop(lambda s: update(s, stop_at=7), 20, config=Cfg(), modules=mods,
                   run_dir=tmp_path, save_every=5, progress=False)
    assert h["loss"][0] == list(range(7))                  # nothing lost, nothing extra
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 7
    # A fresh process: new objects, same run directory -> continues at step 7.
    net, opt = make()
    mods = {"net": net, "opt": opt}
    h = train_loop(update, 20, config=Cfg(), modules=mods, run_dir=tmp_path, progress=False)
    steps, losses = h["loss"]
    assert steps == list(range(20))
    assert losses[-1] < losses[0]


def test_training_seconds_add_up_over_sessions(tmp_path):
    """A resumed run's wall_s counts every session, not only the last one."""
    import time

    net, opt = make()

    def slow(step):
        time.sleep(0.05)
        return {"loss": 0.0}

    mods = {"net": net, "opt": opt}
    first = train_loop(slow, 4, config=Cfg(), modules=mods, run_dir=tmp_path, save_every=2,
                       progress=False).last("wall_s")
    assert 0.2 <= first < 5
    second = train_loop(slow, 8, config=Cfg(), modules=mods, run_dir=tmp_path, save_every=2,
                        progress=False)
    assert second["wall_s"][0][-1] == 8
    assert second.last("wall_s") >= first + 0.2  # 4 more sleeps on top of the first session


def test_history_save_load(tmp_path):
    h = History()
    for i in range(3):
        h.log(i, loss=1.0 / (i + 1), ret=i)
    h.save(tmp_path / "h.json")
    h2 = History.load(tmp_path / "h.json")
    assert h2["loss"] == h["loss"] and h2.last("ret") == 2 and "loss" in h2
