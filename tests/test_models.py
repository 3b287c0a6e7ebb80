"""Model loading: block discovery, seeds, checkpoints, weights offline, devices (interp.models)."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
import types

import open_clip
import pytest
import torch
from torch import nn

from interp import checkpoints
from interp.errors import ChromaError, UsageError
from interp.models import (
    find_blocks,
    load_model,
    probe_shapes,
    resolve_device,
    tiny_clip,
    unit_counts,
)

TINY = "interp.models:tiny_clip"
RN50_BLOCKS = [f"layer{i}.{j}" for i, n in enumerate((3, 4, 6, 3), start=1) for j in range(n)]


@pytest.fixture(scope="module")
def rn50():
    return load_model("RN50", "none", seed=0)


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """Empty caches: every cache location the hub client or open_clip reads points into tmp."""
    for var in ("HF_HOME", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    return tmp_path


@pytest.fixture
def factories(monkeypatch):
    """An importable module `fake_factories` with small custom networks."""
    module = types.ModuleType("fake_factories")

    def plain_net() -> nn.Module:
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2))
        net.image_size, net.mean, net.std = 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
        return net

    class DataDependent(nn.Module):
        """Branches on a value, so it cannot run on meta tensors: probed for real."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)

        def forward(self, x):
            return self.conv(x) if float(x.abs().sum()) >= 0 else x

    module.plain_net, module.data_dependent = plain_net, DataDependent
    monkeypatch.setitem(sys.modules, "fake_factories", module)
    return module


def test_rn50_blocks_units_and_quickgelu(rn50):
    assert list(rn50.blocks) == RN50_BLOCKS
    counts = unit_counts(rn50)
    assert sum(counts.values()) == 15104
    assert counts["layer1.0"] == 256 and counts["layer4.2"] == 2048
    described = json.loads(json.dumps(rn50.describe()))
    assert described["total_units"] == 15104
    assert described["map_shapes"]["layer1.0"] == [56, 56]
    assert described["map_shapes"]["layer4.2"] == [7, 7]
    assert described["open_clip_config"] == "RN50-quickgelu"
    assert (rn50.image_size, rn50.mean) == (224, open_clip.OPENAI_DATASET_MEAN)
    gelu = rn50.clip.transformer.resblocks[0].mlp.gelu
    assert type(gelu).__name__ == "QuickGELU"
    assert not rn50.visual.training and rn50.tokenizer(["red"]).shape == (1, 77)


@pytest.mark.parametrize("name, n_blocks, n_units, size", [
    ("RN101", 33, 32512, 224), ("RN50x4", 26, 33280, 288), ("RN50x16", 40, 60672, 384),
    ("RN50x64", 64, 131584, 448)])
@pytest.mark.slow
def test_bigger_resnets_blocks_on_meta_device(name, n_blocks, n_units, size):
    """Discovery on the real configs without allocating weights (meta tensors carry shapes)."""
    with torch.device("meta"):
        visual = open_clip.create_model(checkpoints.config_name(name, "openai"),
                                        device="meta").visual
    blocks = find_blocks(visual)
    shapes = probe_shapes(visual, blocks, visual.image_size, torch.device("meta"))
    assert (len(blocks), visual.image_size) == (n_blocks, size)
    assert sum(c for c, _, _ in shapes.values()) == n_units
    assert shapes[list(blocks)[-1]][1:] == (size // 32, size // 32)


def test_openai_tags_resolve_to_quickgelu_configs():
    assert checkpoints.config_name("RN50", "openai") == "RN50-quickgelu"
    assert checkpoints.config_name("RN101", "yfcc15m") == "RN101-quickgelu"
    assert checkpoints.config_name("RN50x4", "none") == "RN50x4-quickgelu"
    assert checkpoints.config_name("RN50-quickgelu", "openai") == "RN50-quickgelu"
    assert checkpoints.canonical_model("rn50x4") == "RN50x4"


def test_unknown_model_and_tag_list_the_valid_ones():
    with pytest.raises(UsageError, match="RN50x16"):
        load_model("RN49", "none")
    with pytest.raises(UsageError, match="openai, yfcc15m, cc12m"):
        load_model("RN50", "laion2b")


def test_tiny_clip_blocks_and_speed(caplog):
    loaded = load_model(TINY)  # the default tag openai: a factory keeps its own weights
    assert loaded.describe()["pretrained"] == "none" and "keeps the weights" in caplog.text
    assert list(loaded.blocks) == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]
    assert unit_counts(loaded) == {"layer1.0": 32, "layer2.0": 64, "layer3.0": 128,
                                   "layer4.0": 256}
    assert loaded.describe()["map_shapes"]["layer1.0"] == [16, 16]
    assert loaded.image_size == 64 and loaded.clip is not None
    images, tokens = torch.randn(8, 3, 64, 64), loaded.tokenizer(["red", "the text says blue"])
    with torch.no_grad():
        loaded.clip.encode_image(images[:1])  # first call sets up kernels
        start = time.process_time()  # CPU time: robust to other jobs sharing the machine
        image_emb = loaded.clip.encode_image(images)
        text_emb = loaded.clip.encode_text(tokens)
    assert time.process_time() - start < 1.0
    assert image_emb.shape == (8, 32) and text_emb.shape == (2, 32)


def test_torchvision_factory_finds_basic_blocks():
    loaded = load_model("torchvision.models:resnet18", "none")
    assert list(loaded.blocks) == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert sum(unit_counts(loaded).values()) == 2 * (64 + 128 + 256 + 512)
    assert loaded.clip is None and loaded.tokenizer is None
    assert loaded.describe()["map_shapes"]["layer4.1"] == [7, 7]


def test_factory_attributes_and_layers(factories):
    with pytest.raises(UsageError, match="--layers"):
        load_model("fake_factories:plain_net", "none")
    loaded = load_model("fake_factories:plain_net", "none", layers=["2", "0"])
    assert list(loaded.blocks) == ["2", "0"]
    assert (loaded.image_size, loaded.mean, loaded.std) == (32, (0.5,) * 3, (0.25,) * 3)
    assert loaded.describe()["map_shapes"] == {"2": [15, 15], "0": [32, 32]}
    assert unit_counts(loaded) == {"2": 6, "0": 4}


def test_shapes_of_a_module_that_cannot_run_on_meta(factories):
    loaded = load_model("fake_factories:data_dependent", "none", layers=["conv"])
    assert loaded.describe()["map_shapes"] == {"conv": [112, 112]}
    assert unit_counts(loaded) == {"conv": 5}


def test_unknown_layer_lists_valid_ones(factories):
    with pytest.raises(UsageError, match=r"'layer9'.*layer1\.0, layer2\.0, layer3\.0, layer4\.0"):
        load_model(TINY, "none", layers=["layer9"])
    with pytest.raises(UsageError, match=r"valid: 0, 1, 2") as err:
        load_model("fake_factories:plain_net", "none", layers=["3"])
    assert "\n" not in str(err.value)


def test_layers_override_any_module():
    loaded = load_model(TINY, "none", layers="layer3.0.conv1, layer2.0")
    assert unit_counts(loaded) == {"layer3.0.conv1": 32, "layer2.0": 64}


def test_seeded_untrained_control_is_reproducible():
    first = load_model(TINY, "none", seed=1).clip.state_dict()
    again = load_model(TINY, "none", seed=1).clip.state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert torch.equal(first["visual.conv1.weight"], tiny_clip(seed=1).visual.conv1.weight)
    assert not torch.equal(first["visual.conv1.weight"], tiny_clip(seed=2).visual.conv1.weight)


def test_checkpoint_saved_by_the_test_loads(tmp_path):
    state = tiny_clip(seed=7).state_dict()
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    loaded = load_model(TINY, path, seed=0)
    assert all(torch.equal(v, loaded.clip.state_dict()[k]) for k, v in state.items())
    described = loaded.describe()
    assert described["pretrained"] == str(path.resolve())
    assert described["checkpoint"]["size"] == path.stat().st_size
    assert len(described["checkpoint"]["sha256_first_mib"]) == 64


@pytest.mark.parametrize("layout", ["wrapped", "ddp", "safetensors"])
def test_checkpoint_layouts_unwrap(tmp_path, layout):
    state = {"conv.weight": torch.arange(6.0).reshape(2, 3), "conv.bias": torch.ones(2)}
    path = tmp_path / ("ckpt.safetensors" if layout == "safetensors" else "ckpt.pt")
    if layout == "safetensors":
        safetensors_torch = pytest.importorskip("safetensors.torch")
        safetensors_torch.save_file(state, str(path))
    else:
        torch.save({"wrapped": {"state_dict": state, "epoch": 3, "name": "run1"},
                    "ddp": {f"module.{k}": v for k, v in state.items()}}[layout], path)
    read = checkpoints.read_state_dict(path)
    assert set(read) == set(state) and all(torch.equal(read[k], state[k]) for k in state)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_torchscript_clip_checkpoint_loads(tmp_path):
    """A traced CLIP, like OpenAI's TorchScript .pt files (these save non-persistent buffers)."""
    source = tiny_clip(seed=9)
    source.output_dict = False
    tokens = torch.zeros(1, 77, dtype=torch.long)
    traced = torch.jit.trace(source, (torch.zeros(1, 3, 64, 64), tokens), strict=False,
                             check_trace=False)
    path = tmp_path / "RN_tiny.pt"
    traced.save(str(path))
    loaded = load_model(TINY, str(path))
    assert torch.equal(loaded.clip.visual.conv1.weight, source.visual.conv1.weight)
    assert torch.equal(loaded.clip.token_embedding.weight, source.token_embedding.weight)


def test_mismatched_checkpoint_counts_keys(tmp_path):
    state = tiny_clip(seed=0).state_dict()
    del state["visual.conv1.weight"], state["visual.bn1.weight"]
    state["head.extra"] = torch.zeros(2)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(ChromaError, match=r"2 missing keys \(visual\.conv1\.weight.*"
                                          r"1 unexpected keys \(head\.extra\)") as err:
        load_model(TINY, str(path))
    assert "\n" not in str(err.value)


def test_missing_checkpoint_path_is_named(tmp_path):
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(ChromaError, match=str(missing)):
        load_model(TINY, str(missing))


def _assert_offline_error_fast(model: str = "RN50", tag: str = "openai") -> str:
    start = time.perf_counter()
    with pytest.raises(ChromaError) as err:
        load_model(model, tag)
    assert time.perf_counter() - start < 5.0
    message = str(err.value)
    assert "--pretrained none" in message and "--pretrained PATH" in message
    return message


def test_offline_error_is_fast_with_hub_offline(offline_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "not cached" in _assert_offline_error_fast()


def test_offline_error_is_fast_when_hub_unreachable(offline_home, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert "unreachable" in _assert_offline_error_fast()


@pytest.fixture
def rntiny(monkeypatch):
    """A tiny open_clip ResNet config `RNtiny` (+ `-quickgelu`) with an `openai` tag."""
    quick = {"embed_dim": 32, "quick_gelu": True,
             "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8,
                            "head_width": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32,
                          "heads": 2, "layers": 1}}
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "RNtiny", {**quick, "quick_gelu": False})
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "RNtiny-quickgelu", quick)
    tag = {"hf_hub": "timm/rntiny_clip.openai/", "mean": (0.5, 0.5, 0.5),
           "std": (0.2, 0.2, 0.2), "quick_gelu": True}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "RNtiny", {"openai": tag})
    return "RNtiny"


def test_open_clip_untrained_control_is_seeded(rntiny):
    first = load_model(rntiny, "none", seed=4)
    again = load_model(rntiny, "none", seed=4)
    other = load_model(rntiny, "none", seed=5)
    assert first.config_name == "RNtiny-quickgelu"
    state, same = first.clip.state_dict(), again.clip.state_dict()
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert not torch.equal(state["visual.conv1.weight"], other.clip.visual.conv1.weight)


def test_cached_tag_weights_load_without_network(offline_home, rntiny, monkeypatch):
    """A tag whose weights sit in the hub cache loads offline, with the tag's mean/std."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(5)
    source = open_clip.create_model("RNtiny-quickgelu")
    repo = offline_home / "hf_home" / "hub" / "models--timm--rntiny_clip.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    torch.save(source.state_dict(), repo / "snapshots" / "abc123" / "open_clip_pytorch_model.bin")

    loaded = load_model("rntiny", "OpenAI", seed=0)
    assert (loaded.model, loaded.config_name) == ("RNtiny", "RNtiny-quickgelu")
    assert (loaded.mean, loaded.std) == ((0.5,) * 3, (0.2,) * 3)
    assert torch.equal(loaded.visual.conv1.weight, source.visual.conv1.weight)
    described = loaded.describe()
    assert described["pretrained"] == "openai" and described["checkpoint"]["tag"] == "openai"
    assert "path" not in described["checkpoint"]  # stable across machines and caches


def test_device_errors():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UsageError, match="gpu"):
        resolve_device("gpu")
    with pytest.raises(ChromaError, match="cuda:99"):
        resolve_device("cuda:99")
    if not torch.cuda.is_available():
        with pytest.raises(ChromaError, match="--device cpu"):
            load_model(TINY, "none", device="cuda")



def test_hub_probe_is_bounded_in_time():
    start = time.perf_counter()
    assert not checkpoints.hub_reachable("http://10.255.255.1", timeout=0.5)  # no route / no answer
    assert time.perf_counter() - start < 1.5


def test_hub_probe_sees_a_live_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        assert checkpoints.hub_reachable(f"http://127.0.0.1:{server.server_port}/", timeout=2)
    finally:
        server.server_close()


def test_untrained_control_is_random_in_every_block(monkeypatch):
    """open_clip zero-inits bn3: without the reset, layer1.1 would output exactly its input."""
    cfg = {"embed_dim": 32, "quick_gelu": True,
           "vision_cfg": {"image_size": 64, "layers": [2, 1, 1, 1], "width": 8, "head_width": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32,
                        "heads": 2, "layers": 1}}
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "RNtwo-quickgelu", cfg)
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "RNtwo", cfg)
    loaded = load_model("RNtwo", "none", seed=0)
    seen = {}
    hooks = [loaded.blocks[name].register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out.clone())) for name in
        ("layer1.0", "layer1.1")]
    with torch.no_grad():
        loaded.visual(torch.randn(2, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    assert not torch.allclose(seen["layer1.0"], seen["layer1.1"])
    assert all(torch.all(m.bn3.weight == 1) for m in loaded.blocks.values())
