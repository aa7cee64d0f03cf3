"""The hardware a budgeted training run uses: every CPU core, or a GPU with a larger batch."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from test_training import write_tiny_corpus

from firststart.training import train_transcoders
from glassbox.testing import make_tiny_model
from glassbox.training import hardware


def test_cpu_runs_use_every_usable_core_and_restore_the_thread_count(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "usable_cores", lambda: 3)
    hw = hardware.detect("cpu")
    assert (hw.device, hw.threads, hw.batch_size, hw.is_gpu) == ("cpu", 3, hardware.CPU_BATCH, False)
    assert hw.describe(900) == "training on 3 CPU cores for 15 min, 16 sequences per step"
    before = torch.get_num_threads()
    with hw.in_use():
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before


def test_a_gpu_gets_a_larger_batch_and_is_named(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(name="NVIDIA H200", total_memory=139 * 2**30))
    hw = hardware.detect()
    assert hw.is_gpu and hw.threads is None and hw.batch_size == hardware.GPU_BATCH > hardware.CPU_BATCH
    assert hw.train_options() == {"batch_size": hardware.GPU_BATCH}
    assert "NVIDIA H200 (139 GiB)" in hw.describe(900)


def test_the_setup_says_which_hardware_it_trains_on(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(hardware, "usable_cores", lambda: 2)
    corpus = write_tiny_corpus(tmp_path / "corpus", n_docs=60)
    messages: list[str] = []
    out = train_transcoders(make_tiny_model("gemma3"), corpus=str(corpus), out_dir=tmp_path / "set",
                            budget_s=60, n_features=16, name="tiny",
                            progress=lambda frac, detail: messages.append(detail),
                            options=dict(k=2, seq_len=16, batch_size=2, tokens=60, budget_s=None,
                                         calib_batches=1, warmup_steps=1))
    assert (out / "config.yaml").is_file()
    assert messages[0] == "training on 2 CPU cores for 1 min, 2 sequences per step"
    prefix = "training on 2 CPU cores for 1 min, 2 sequences per step: step "
    assert any(m.startswith(prefix) for m in messages[1:])
