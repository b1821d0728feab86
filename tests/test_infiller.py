"""The motion infiller network: official numerics (fixture), masking, checkpoint loading."""

import pytest
import torch

from hawor.compat import infiller_fixture
from hawor.errors import HaworInputError
from hawor.models.infiller import InfillerConfig, MotionInfiller, observed_attention_mask
from hawor.world.infill import WEIGHTS_KEY, load_infiller

from conftest import FIXTURES_DIR as FIXTURES
TINY = InfillerConfig(seq_len=12, d_model=32, nhead=4, d_hid=48, nlayers=2)


@pytest.mark.skipif(not infiller_fixture.present(FIXTURES), reason="shared compat fixtures not on this machine")
def test_matches_official_reference_in_float64():
    outputs = infiller_fixture.run(FIXTURES)
    assert set(outputs) == {"input_proj", "after_pos", "masked_stage_out", "encoder_out", "output"}
    for name, (ours, reference) in outputs.items():
        torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-10, msg=name)


def test_state_dict_layout_matches_official_names():
    keys = MotionInfiller(TINY).state_dict().keys()
    assert "pos_embedding.pe" in keys and "decoder.weight" in keys
    assert "att_layers.1.q_linear.weight" in keys and "att_layers.1.q_linear.bias" not in keys
    assert "pff_layers.0.network.3.bias" in keys
    assert "transformer_encoder.layers.1.self_attn.in_proj_weight" in keys


def test_hidden_frames_cannot_leak_into_the_masked_stage():
    torch.manual_seed(0)
    model = MotionInfiller(TINY).double().eval()
    t = 10
    observed = torch.ones(t, 1, dtype=torch.bool)
    observed[3:7] = False
    src = torch.randn(t, 1, 218, dtype=torch.float64)
    changed = src.clone()
    changed[3:7] += 5.0
    mask = observed.double()[..., None]
    with torch.no_grad():
        a = model.forward_intermediates(src, mask, observed_attention_mask(observed))
        b = model.forward_intermediates(changed, mask, observed_attention_mask(observed))
    keep = observed[:, 0]
    torch.testing.assert_close(a["masked_stage_out"][keep], b["masked_stage_out"][keep], rtol=0, atol=1e-12)
    assert not torch.allclose(a["output"][keep], b["output"][keep])  # the encoder stage sees every frame
    assert a["output"].shape == (t, 1, 218)


def test_load_infiller_reads_the_official_container(tmp_path):
    torch.manual_seed(1)
    source = MotionInfiller(TINY)
    path = tmp_path / "infiller.pt"
    torch.save({WEIGHTS_KEY: source.state_dict(), "epoch": 7, "horizon": 12}, path)
    loaded = load_infiller(path, TINY)
    assert load_infiller(path).config == InfillerConfig(seq_len=12, d_model=32, nhead=8, d_hid=48, nlayers=2)
    torch.save({WEIGHTS_KEY: source.state_dict(), "nhead": 4}, path)
    assert load_infiller(path).config == TINY  # sizes from the shapes, heads from the file
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert not loaded.training


def test_load_infiller_rejects_wrong_files(tmp_path):
    wrong_size = tmp_path / "wrong.pt"
    torch.save({WEIGHTS_KEY: MotionInfiller(TINY).state_dict()}, wrong_size)
    with pytest.raises(HaworInputError, match="wrong.pt"):
        load_infiller(wrong_size, InfillerConfig())  # full-size config against tiny weights
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(HaworInputError):
        load_infiller(garbage)
    not_infiller = tmp_path / "other.pt"
    torch.save({"state_dict": {"backbone.weight": torch.zeros(2)}}, not_infiller)
    with pytest.raises(HaworInputError, match="infiller"):
        load_infiller(not_infiller)


def test_config_from_dict_ignores_unknown_keys():
    config = InfillerConfig.from_dict({"seq_len": 24, "d_model": 64, "masked_attention_stage": True})
    assert (config.seq_len, config.d_model, config.nhead) == (24, 64, 8)
