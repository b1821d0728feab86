import os
import sys
import types

import pytest
import torch
from torch import nn

from hawor.errors import HaworInputError
from hawor.models.checkpoint import (
    CheckpointMismatchError,
    extract_state_dict,
    load_checkpoint,
    load_state_dict_strict,
    strip_prefixes,
)


def _with_fake_module(module_name, class_name, base=dict):
    """A class importable at ``module_name.class_name`` while saving, as if yacs/omegaconf were installed."""
    parts = module_name.split(".")
    saved = {".".join(parts[:i + 1]): sys.modules.get(".".join(parts[:i + 1])) for i in range(len(parts))}
    for name in saved:
        sys.modules[name] = types.ModuleType(name)
    cls = type(class_name, (base,), {"__module__": module_name})
    setattr(sys.modules[module_name], class_name, cls)
    return cls, saved


def _restore(saved):
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


def test_lightning_checkpoint_with_cfgnode(tmp_path):
    CfgNode, saved = _with_fake_module("yacs.config", "CfgNode")
    try:
        cfg = CfgNode(MODEL=CfgNode(ST_HDIM=512, BACKBONE=CfgNode(TYPE="vit")))
        cfg.__dict__["__immutable__"] = True
        torch.save({"state_dict": {"model.backbone._orig_mod.w": torch.ones(3)},
                    "hyper_parameters": {"cfg": cfg}, "epoch": 7, "pytorch-lightning_version": "2.0"},
                   tmp_path / "m.ckpt")
    finally:
        _restore(saved)
    ckpt = load_checkpoint(tmp_path / "m.ckpt")
    assert ckpt["hyper_parameters"]["cfg"] == {"MODEL": {"ST_HDIM": 512, "BACKBONE": {"TYPE": "vit"}}}
    assert type(ckpt["hyper_parameters"]["cfg"]) is dict
    assert list(strip_prefixes(extract_state_dict(ckpt))) == ["backbone.w"]


def test_omegaconf_like_config_becomes_dict(tmp_path):
    Node, saved = _with_fake_module("omegaconf.dictconfig", "DictConfig", base=object)
    Leaf = type("AnyNode", (object,), {"__module__": "omegaconf.dictconfig"})
    sys.modules["omegaconf.dictconfig"].AnyNode = Leaf
    try:
        leaf = Leaf()
        leaf.__dict__.update({"_val": 384, "_metadata": None})
        node = Node()
        node.__dict__.update({"_content": {"MOTION_HDIM": leaf}, "_metadata": None})
        torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": {"cfg": node}}, tmp_path / "o.ckpt")
    finally:
        _restore(saved)
    assert load_checkpoint(tmp_path / "o.ckpt")["hyper_parameters"]["cfg"] == {"MOTION_HDIM": 384}


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch SHOULD_NOT_EXIST",))


def test_malicious_reduce_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(HaworInputError, match="refusing to load"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()


def test_truncated_and_missing_files(tmp_path):
    torch.save({"w": torch.ones(100)}, tmp_path / "ok.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:200])
    with pytest.raises(HaworInputError, match="cut.pt.*truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(HaworInputError, match="not found"):
        load_checkpoint(tmp_path / "absent.ckpt")


def test_strip_prefixes_variants():
    sd = {"module.a": 1, "model.b._orig_mod.c": 2, "_orig_mod.d": 3}
    assert strip_prefixes(sd) == {"a": 1, "b.c": 2, "d": 3}


def test_strict_loading_reports_keys_by_name():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    good = {k: v.clone() + 1 for k, v in net.state_dict().items()}
    load_state_dict_strict(net, {**good, "mano.v_template": torch.zeros(1)}, ignore_prefixes=("mano.",))
    assert torch.equal(net[0].weight, good["0.weight"])
    bad = dict(good)
    bad.pop("1.bias")
    bad["0.weight"] = torch.zeros(4, 2)
    bad["extra.w"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_strict(net, bad, source="hawor.ckpt")
    message = str(err.value)
    assert "missing 1: 1.bias" in message and "unexpected 1: extra.w" in message
    assert "0.weight: file (4, 2) vs network (3, 2)" in message and "hawor.ckpt" in message


def test_extract_state_dict_by_key(tmp_path):
    torch.save({"transformer_encoder_state_dict": {"w": torch.ones(1)}, "epoch": 3}, tmp_path / "i.pt")
    obj = load_checkpoint(tmp_path / "i.pt")
    assert list(extract_state_dict(obj, "transformer_encoder_state_dict")) == ["w"]
    with pytest.raises(HaworInputError, match="no 'other' entry"):
        extract_state_dict(obj, "other")
