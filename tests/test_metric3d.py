"""Metric3D v2 ViT: official numeric fixture, full-size key manifest, weight loading."""
import json

import numpy as np
import pytest
import torch

from hawor.compat import metric3d_fixture
from hawor.compat.verify import compare
from hawor.models.metric3d import Metric3D, Metric3DConfig
from hawor.models.upsampling import convex_upsample
from hawor.depth.predictor import Metric3DPredictor
from hawor.depth.loading import load_metric3d
from hawor.errors import HaworInputError
from hawor.models.checkpoint import CheckpointMismatchError

from conftest import COMPAT_DIR as COMPAT
FIXTURE = COMPAT / "fixtures" / "metric3d"


def tiny_config(**overrides) -> Metric3DConfig:
    sizes = dict(embed_dim=32, depth=1, num_heads=2, mlp_hidden=64, pretrain_img_size=28,
                 feature_channels=(8, 16, 32, 32), decoder_channels=(4, 8, 16, 32, 32),
                 hidden_channels=(8, 8, 8, 8), iters=2, num_depth_bins=16, normal_head_width=8,
                 input_size=(56, 84))
    sizes.update(overrides)
    return Metric3DConfig(**sizes)


def test_fixture_float64_matches_every_output_intermediate_and_pipeline_step():
    results = metric3d_fixture.run(FIXTURE.parent)
    assert {"prediction", "intermediates/gru_h_1_4_per_iter", "pipeline/metric_depth"} <= set(results)
    failed = {name: compare(ours, ref)[0] for name, (ours, ref) in results.items() if not compare(ours, ref)[1]}
    assert not failed, failed


def test_fixture_float32_run_is_within_the_observed_float32_noise():
    config = json.loads((FIXTURE / "config.json").read_text())
    model = Metric3D(Metric3DConfig.from_dict(config)).eval()
    model.load_state_dict(torch.load(FIXTURE / "state_dict.pt", weights_only=True))
    with torch.no_grad():
        out = model(torch.load(FIXTURE / "inputs.pt", weights_only=True)["input"])
    reference = torch.load(FIXTURE / "outputs.pt", weights_only=True)
    noise = config["observed_float32_max_abs_deviation_from_float64_reference"]
    for name in ("prediction", "confidence", "prediction_normal"):
        err = (getattr(out, name).double() - reference[name]).abs().max().item()
        assert err <= 4 * noise[name], (name, err)


def test_full_size_model_matches_the_official_manifest_key_for_key():
    manifest = json.loads((COMPAT / "metric3d_state_dict.json").read_text())
    with torch.device("meta"):
        model = Metric3D()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    official = {k: v["shape"] for k, v in manifest["tensors"].items()}
    assert ours == official
    assert sum(p.numel() for p in model.parameters()) == manifest["parameter_count"]["model_total"]


def test_convex_upsampling_keeps_a_constant_map_and_the_layout():
    state = torch.full((1, 2, 3, 4), 7.0)
    mask = torch.randn(1, 9 * 16, 3, 4)
    up = convex_upsample(state, mask, 4)
    # Interior output pixels only mix interior neighbours: a constant stays constant.
    assert up.shape == (1, 2, 12, 16)
    assert torch.allclose(up[:, :, 4:8, 4:12], torch.full_like(up[:, :, 4:8, 4:12], 7.0))
    # A one-hot mask on the centre neighbour (k = 4) is nearest-neighbour upsampling.
    onehot = torch.full((1, 9, 4, 4, 3, 4), -1e4)
    onehot[:, 4] = 0
    ramp = torch.arange(24.0).view(1, 2, 3, 4)
    expected = ramp.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    assert torch.equal(convex_upsample(ramp, onehot.view(1, 144, 3, 4), 4), expected)


def _checkpoint(tmp_path, model, **extra):
    path = tmp_path / "metric_depth_vit_large_800k.pth"
    torch.save({"model_state_dict": {**model.state_dict(), **extra}, "max_iter": 800000}, path)
    return path


def test_loads_the_official_container_and_ignores_mask_token(tmp_path):
    cfg = tiny_config()
    torch.manual_seed(0)
    source = Metric3D(cfg).eval()
    path = _checkpoint(tmp_path, source, **{"depth_model.encoder.mask_token": torch.zeros(1, 32)})
    loaded = load_metric3d(path, cfg=cfg)
    image = torch.randn(1, 3, 56, 84)
    with torch.no_grad():
        assert torch.equal(loaded(image).prediction, source(image).prediction)


def test_sizes_are_read_from_the_checkpoint(tmp_path):
    with torch.device("meta"):
        full = Metric3D().state_dict()
    assert Metric3DConfig.from_state_dict(full) == Metric3DConfig()  # the released file: ViT-Large
    # Shapes fix every size; the refinement count and input size are not stored, so they stay ViT-L's.
    cfg = tiny_config(embed_dim=64, num_heads=1, feature_channels=(8, 16, 64, 64),
                      decoder_channels=(4, 8, 16, 64, 64), depth=2, iters=8, input_size=(616, 1064))
    torch.manual_seed(2)
    source = Metric3D(cfg).eval()
    loaded = load_metric3d(_checkpoint(tmp_path, source))  # no cfg: every size from the tensors
    assert loaded.cfg == cfg
    image = torch.randn(1, 3, 56, 84)
    with torch.no_grad():
        assert torch.equal(loaded(image).prediction, source(image).prediction)
    with pytest.raises(HaworInputError, match="cls_token"):
        Metric3DConfig.from_state_dict({"depth_model.encoder.norm.weight": torch.zeros(3)})


def test_settings_no_tensor_shows_come_from_the_config_entry(tmp_path):
    cfg = tiny_config(embed_dim=64, num_heads=1, feature_channels=(8, 16, 64, 64), decoder_channels=(4, 8, 16, 64, 64))
    path = tmp_path / "m.pth"
    model = Metric3D(cfg)
    torch.save({"model_state_dict": model.state_dict(), "config": {"iters": 2, "input_size": [56, 84]}}, path)
    assert load_metric3d(path).cfg == cfg
    torch.save({"model_state_dict": model.state_dict(), "config": {"layers": 3}}, path)
    with pytest.raises(HaworInputError, match="'config' entry must map Metric3DConfig fields"):
        load_metric3d(path)


def test_wrong_or_missing_weights_give_clear_errors(tmp_path, monkeypatch):
    path = _checkpoint(tmp_path, Metric3D(tiny_config()))
    with pytest.raises(CheckpointMismatchError, match="Metric3D weights"):
        load_metric3d(path, cfg=tiny_config(embed_dim=48, feature_channels=(8, 16, 48, 48),
                                            decoder_channels=(4, 8, 16, 48, 48)))
    with pytest.raises(HaworInputError, match="no such file"):
        load_metric3d(tmp_path / "nope.pth")
    monkeypatch.setenv("HAWOR_ROOT", str(tmp_path / "empty_root"))
    with pytest.raises(HaworInputError, match="thirdparty/Metric3D/weights"):
        load_metric3d()


def test_bad_input_shapes_are_refused():
    model = Metric3D(tiny_config()).eval()
    with pytest.raises(HaworInputError, match="multiples of 28"):
        model(torch.zeros(1, 3, 50, 84))
    with pytest.raises(HaworInputError, match="RGB uint8"):
        Metric3DPredictor(model).predict(np.zeros((20, 30), np.uint8), 500.0)


def test_predictor_returns_metric_depth_at_the_resized_size():
    torch.manual_seed(1)
    model = Metric3D(tiny_config()).eval()
    frame = (np.random.default_rng(0).random((90, 160, 3)) * 255).astype(np.uint8)
    predictor = Metric3DPredictor(model)
    depth = predictor.predict(frame, fx=300.0)
    assert depth.shape == (47, 84) and depth.dtype == np.float32
    # Depth is linear in the focal (canonical camera model) and stays within the clamp range.
    assert np.allclose(predictor.predict(frame, fx=600.0), 2 * depth, rtol=1e-6)
    canonical_max = 200.0 * 300.0 * 0.525 / 1000.0
    assert 0 < depth.min() and depth.max() <= canonical_max + 1e-4
    assert predictor.predict_resized(frame, 300.0, (40, 64)).shape == (40, 64)
