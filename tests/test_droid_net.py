"""DROID network: official fixture in float64, droid.pth loading, correlation lookup, convex upsampling."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from hawor.compat import droid_fixture
from hawor.errors import HaworInputError
from hawor.models.checkpoint import CheckpointMismatchError
from hawor.slam.droid import DroidNet, DroidNetConfig, load_droid_net
from hawor.slam.droid.corr import CorrBlock, correlation_pyramid
from hawor.models.droid import upsample_disp

from conftest import FIXTURES_DIR as FIXTURES
TINY = DroidNetConfig(encoder_width=8, fnet_dim=16, cnet_dim=32, hidden_dim=16)


def test_droid_fixture_float64():
    results = droid_fixture.run(FIXTURES)
    expected = {"fmaps", "net", "inp", "upd_net", "upd_delta", "upd_weight", "upd_eta", "upd_upmask", "disp_up",
                "corr_level0", "corr_level1", "corr_level2", "corr_level3"}
    assert set(results) == expected
    for name, (ours, ref) in results.items():
        assert ours.shape == ref.shape, name
        assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-10), (name, (ours - ref).abs().max().item())


def test_official_layout_has_102_tensors_and_4002565_parameters():
    net = DroidNet()
    sd = net.state_dict()
    assert len(sd) == 102
    assert sum(v.numel() for v in sd.values()) == 4_002_565
    assert sd["update.weight.2.weight"].shape == (2, 128, 3, 3)
    assert sd["update.agg.upmask.0.weight"].shape == (576, 128, 1, 1)


def _official_file(net: DroidNet, path: Path) -> dict:
    """A droid.pth-style dict: 'module.' prefix, 3-channel head convs (channel 3 filler)."""
    sd = {}
    for k, v in net.state_dict().items():
        if k.startswith(("update.weight.2.", "update.delta.2.")):
            v = torch.cat([v, torch.randn_like(v[:1])])
        sd["module." + k] = v.clone()
    torch.save(sd, path)
    return sd


def test_load_droid_pth_strips_prefix_and_slices_heads(tmp_path):
    src = DroidNet(TINY)
    _official_file(src, tmp_path / "droid.pth")
    net = load_droid_net(tmp_path / "droid.pth", cfg=TINY)
    for k, v in src.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k


def test_sizes_are_read_from_the_file(tmp_path):
    assert DroidNetConfig.from_state_dict(DroidNet().state_dict()) == DroidNetConfig()
    src = DroidNet(TINY)
    _official_file(src, tmp_path / "droid.pth")
    net = load_droid_net(tmp_path / "droid.pth")  # no cfg: widths from the tensors
    assert net.cfg == TINY
    sd = _official_file(DroidNet(DroidNetConfig(hidden_dim=16, cnet_dim=32)), tmp_path / "odd.pth")
    sd["module.update.corr_encoder.0.weight"] = sd["module.update.corr_encoder.0.weight"][:, :50]
    torch.save(sd, tmp_path / "odd.pth")
    with pytest.raises(CheckpointMismatchError, match="correlation planes"):
        load_droid_net(tmp_path / "odd.pth")


def test_wrong_or_missing_droid_file_gives_clear_errors(tmp_path):
    with pytest.raises(HaworInputError, match="droid.pth"):
        load_droid_net(tmp_path / "absent.pth", cfg=TINY)
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(HaworInputError, match="not a DROID-SLAM weight file"):
        load_droid_net(tmp_path / "other.pth", cfg=TINY)
    sd = _official_file(DroidNet(TINY), tmp_path / "droid.pth")
    del sd["module.update.gru.convz.weight"]
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(CheckpointMismatchError, match="update.gru.convz.weight"):
        load_droid_net(tmp_path / "cut.pth", cfg=TINY)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(HaworInputError):
        load_droid_net(tmp_path / "junk.pth", cfg=TINY)


def _bilinear(img: torch.Tensor, x: float, y: float) -> float:
    """Reference bilinear sample with zero outside (pixel centres at integers)."""
    h, w = img.shape
    x0, y0 = math.floor(x), math.floor(y)
    total = 0.0
    for xi, yi in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
        if 0 <= xi < w and 0 <= yi < h:
            total += (1 - abs(x - xi)) * (1 - abs(y - yi)) * float(img[yi, xi])
    return total


def test_correlation_lookup_matches_reference_sampler():
    g = torch.Generator().manual_seed(0)
    h, w, r = 9, 8, 3  # odd height: floor pooling; level 3 is a single pixel
    f1 = torch.randn(1, 2, 8, h, w, generator=g, dtype=torch.float64)
    f2 = torch.randn(1, 2, 8, h, w, generator=g, dtype=torch.float64)
    block = CorrBlock(f1, f2, num_levels=4, radius=r)
    assert [tuple(level.shape[-2:]) for level in block.levels] == [(9, 8), (4, 4), (2, 2), (1, 1)]
    coords = torch.rand(1, 2, h, w, 2, generator=g, dtype=torch.float64) * torch.tensor([w, h]) - 1.0
    out = block(coords)
    assert out.shape == (1, 2, 4 * 49, h, w)
    for e, y, x in ((0, 0, 0), (1, 4, 3), (0, 8, 7), (1, 2, 5)):
        cx, cy = coords[0, e, y, x].tolist()
        for lvl in range(4):
            vol = block.levels[lvl][e, y, x]
            for a in (0, 3, 6):
                for b in (0, 2, 6):
                    want = _bilinear(vol, cx / 2 ** lvl + a - r, cy / 2 ** lvl + b - r)
                    got = out[0, e, lvl * 49 + a * 7 + b, y, x].item()
                    assert got == pytest.approx(want, abs=1e-12)
    # level 0 is the scaled dot product
    vol0 = correlation_pyramid(f1, f2)[0]
    assert torch.allclose(vol0[1, 2, 3], torch.einsum("c,chw->hw", f1[0, 1, :, 2, 3], f2[0, 1]) / 16)


def test_convex_upsampling_reference():
    g = torch.Generator().manual_seed(1)
    disp = torch.rand(1, 2, 3, 4, generator=g, dtype=torch.float64)
    mask = torch.randn(1, 2, 9 * 64, 3, 4, generator=g, dtype=torch.float64)
    up = upsample_disp(disp, mask)
    assert up.shape == (1, 2, 24, 32)
    padded = torch.nn.functional.pad(disp, (1, 1, 1, 1))
    for u, y, x, a, c in ((0, 0, 0, 0, 0), (1, 2, 3, 7, 5), (0, 1, 2, 3, 6)):
        wts = torch.softmax(mask[0, u, :, y, x].reshape(9, 8, 8)[:, a, c], 0)
        nb = torch.stack([padded[0, u, y + k // 3, x + k % 3] for k in range(9)])
        assert up[0, u, 8 * y + a, 8 * x + c].item() == pytest.approx(float((wts * nb).sum()), abs=1e-14)


def test_tiny_config_shapes_and_output_ranges():
    net = DroidNet(TINY).eval()
    imgs = torch.randint(0, 256, (1, 2, 3, 64, 96), dtype=torch.uint8)
    with torch.no_grad():
        fmaps, hidden, inp = net.extract_features(imgs)
        assert fmaps.shape == (1, 2, 16, 8, 12) and hidden.shape == inp.shape == (1, 2, 16, 8, 12)
        ii, jj = torch.tensor([0, 1, 0]), torch.tensor([1, 0, 0])
        corr = torch.randn(1, 3, TINY.corr_planes, 8, 12)
        out = net.update(hidden[:, ii], inp[:, ii], corr, torch.zeros(1, 3, 4, 8, 12), ii, jj)
    assert [tuple(t.shape) for t in out] == [(1, 3, 16, 8, 12), (1, 3, 8, 12, 2), (1, 3, 8, 12, 2), (1, 2, 8, 12),
                                             (1, 2, 576, 8, 12)]
    assert (out[3] > 0).all() and ((out[2] > 0) & (out[2] < 1)).all()
