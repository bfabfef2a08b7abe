"""Build fennec's published-history package data: tables, Hub mappings and their counts.

``fennec/published/data/`` holds what ``fennec.published`` reads:

- ``tables/``: the published transfer-result tables, copied byte for byte from the shared
  index (``../shared/data/transfer-results`` beside the checkout, or ``--tables``);
- ``models.json``: for every model of every table, the Hub repository with the same weights
  (or none, with the reason), its ``status`` and the ``evidence`` it rests on;
- ``tasks.json``: for every task, the Hub dataset (config, splits, label and image
  columns), the same way.

The mapping decisions are the rules and the evidence table below: each Hub id was looked up
with the search tool (stored Hub pages, timm and dataset cards); an id whose weights,
config, splits or columns were not all seen is ``unconfirmed``, never guessed into
``confirmed``. ``fennec/published/README.md`` gets the counts from ``fennec.published.summary``.

Run::

    python scripts/build_published.py            # copy the tables (when present), write the mappings and README
    python scripts/build_published.py --check    # exit 1 if any written file would change
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fennec import published  # noqa: E402

DATA = ROOT / "fennec" / "published" / "data"
README = ROOT / "fennec" / "published" / "README.md"
DEFAULT_TABLES = ROOT.parent / "shared" / "data" / "transfer-results"

NAME_IN_TABLE = "name in source table"
TIMM_NOTE = ("timm's copy of the torchvision IMAGENET1K_V1 weights (timm re-serialized torchvision's file; the "
             "source may name an older file of the same weights); not byte-verified")

# -- models ------------------------------------------------------------------------------

#: Hub repositories confirmed with the search tool: id -> the stored page that shows it.
HUB_EVIDENCE = {
    "timm/resnet18.tv_in1k": "https://huggingface.co/timm/resnet18.tv_in1k/tree/main",
    "timm/resnet34.tv_in1k": "https://huggingface.co/timm/resnet34.tv_in1k/tree/main",
    "timm/resnet50.tv_in1k": "https://huggingface.co/timm/resnet50.tv_in1k/blob/aa6c2d36d56bc0209040c02b5a7b7d7bf11d57b8"
                             "/config.json (tag tv_in1k, origin_url https://github.com/pytorch/vision)",
    "timm/resnet101.tv_in1k": "https://huggingface.co/timm/resnet101.tv_in1k/tree/main",
    "timm/resnet152.tv_in1k": "https://huggingface.co/timm/resnet152.tv_in1k/tree/2a9b5c2460893a2ab13d8625db2383f3094d704f",
    "timm/densenet121.tv_in1k": "https://huggingface.co/timm/densenet121.tv_in1k/tree/main",
    "timm/densenet169.tv_in1k": "https://huggingface.co/timm/densenet169.tv_in1k/tree/main",
    "timm/densenet201.tv_in1k": "https://huggingface.co/timm/densenet201.tv_in1k/tree/main",
    "timm/inception_v3.tv_in1k": "https://huggingface.co/timm/inception_v3.tv_in1k/blob/main/README.md (\"Trained on "
                                 "ImageNet-1k, torchvision weights\")",
    "timm/deit_tiny_patch16_224.fb_in1k": "https://huggingface.co/timm/deit_tiny_patch16_224.fb_in1k/blob/main/config.json",
    "timm/deit_small_patch16_224.fb_in1k": "https://huggingface.co/timm/deit_small_patch16_224.fb_in1k/commits/main",
    "timm/deit_base_patch16_224.fb_in1k": "https://huggingface.co/timm/deit_base_patch16_224.fb_in1k/commits/main",
    "timm/vit_small_patch16_224.dino": "https://huggingface.co/timm/vit_small_patch16_224.dino/blame/main/README.md "
                                       "(Original: github.com/facebookresearch/dino)",
    "timm/vit_base_patch16_224.dino": "https://huggingface.co/timm/vit_base_patch16_224.dino/blame/"
                                      "471e25ecc5462b6a824b8e3f974a5d48ee067ed1/README.md",
    "timm/pvt_v2_b2.in1k": "https://huggingface.co/timm/pvt_v2_b2.in1k/commits/main",
    "timm/pvt_v2_b3.in1k": "https://huggingface.co/timm/pvt_v2_b3.in1k/raw/main/README.md (\"Trained on ImageNet-1k by "
                           "paper authors\", Original: github.com/whai362/PVT)",
    "timm/swin_small_patch4_window7_224.ms_in1k": "https://huggingface.co/timm/swin_small_patch4_window7_224.ms_in1k/"
                                                  "commits/main/README.md",
    "timm/swin_tiny_patch4_window7_224.ms_in1k": "https://huggingface.co/timm/swin_tiny_patch4_window7_224.ms_in1k/"
                                                 "commits/main",
}

#: torchvision ImageNet-1k architectures with an exact timm port (``<arch>.tv_in1k``).
TV_PORTS = {a: f"timm/{a}.tv_in1k" for a in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                             "densenet121", "densenet169", "densenet201", "inception_v3")}
#: torchvision ImageNet-1k architectures without one, and why.
TV_UNPORTED = {
    "googlenet": "timm has no GoogLeNet architecture and no Hub repository with torchvision's googlenet weights "
                 "was found",
    "mobilenet_v2": "timm's mobilenetv2_100 weights (ra_in1k …) are a different training, not torchvision's; no Hub "
                    "port of torchvision's mobilenet_v2 weights was found",
    "mnasnet1_0": "timm's mnasnet_100 weights are a different training, not torchvision's; no Hub port of "
                  "torchvision's mnasnet1_0 weights was found",
    "alexnet": "timm has no AlexNet architecture and no Hub repository with torchvision's alexnet weights was found",
}

#: EMMS's ViT-family models: the hub id its table names (``hf_hub``), checked with the search tool.
EMMS_UNMAPPED = {
    "mocov3_small": ("unmapped", None, None, "MoCo v3 ViT-S (12 heads, vit-s-300ep.pth.tar) has no timm config and no "
                     "Hub port was found"),
    "pvt_tiny": ("unconfirmed", "Zetatech/pvt-tiny-224", "transformers",
                 "transformers PVT v1 port of the same size; that it holds whai362/PVT's pvt_tiny.pth weights "
                 "(the file EMMS loads) was not verified"),
    "pvt_small": ("unconfirmed", "Zetatech/pvt-small-224", "transformers",
                  "transformers PVT v1 port of the same size; that it holds whai362/PVT's pvt_small.pth weights "
                  "was not verified"),
    "pvt_medium": ("unconfirmed", "Zetatech/pvt-medium-224", "transformers",
                   "transformers PVT v1 port of the same size; that it holds whai362/PVT's pvt_medium.pth weights was "
                   "not verified"),
}
ZETATECH_EVIDENCE = ("https://huggingface.co/Zetatech (pvt-tiny-224, pvt-small-224, pvt-medium-224; imagenet-1k, "
                     "arxiv:2102.12122)")

SSL_NOTE = ("self-supervised ResNet-50 checkpoint of ssl-transfer (Ericsson et al. 2021); none is in timm's "
            "pretrained configs and no Hub port of these weights was found")
SSL_EVIDENCE = ("search 'SwAV ResNet-50 ImageNet pretrained weights Hugging Face Hub timm port' (docs corpus): only "
                "facebookresearch/swav hubconf.py and unrelated repos (lixiangchun/imagenet-swav-resnet50w2 layer2 "
                "export, 1aurent/resnet50.lunit_swav pathology model)")
PARC_EVIDENCE = "https://github.com/dbolya/parc constants.py (4 architectures x 8 sources; 'external' = crowd-sourced)"


def _tv(arch: str, source_file: str) -> dict:
    """A torchvision ImageNet-1k checkpoint of ``arch``."""
    if arch in TV_PORTS:
        hub = TV_PORTS[arch]
        return _entry("confirmed", hub, HUB_EVIDENCE[hub], TIMM_NOTE, "timm")
    return _entry("unmapped", None, f"{source_file} hf_hub_note (timm's pretrained configs at "
                  "huggingface/pytorch-image-models aa4b585 checked)", TV_UNPORTED[arch])


def _entry(status: str, hub_id: str | None, evidence: str, note: str = "", library: str | None = None) -> dict:
    return {"hub_id": hub_id, "status": status, "evidence": evidence, "note": note, "library": library}


def model_entry(source_id: str, name: str, raw: dict) -> dict:
    """The mapping of one model of one source (the rules of this script, per source)."""
    arch = raw.get("arch", {}).get(name, {})
    if source_id in ("transfergraph_hf_finetune", "transfergraph_metric_scores"):
        return _entry("confirmed", name, NAME_IN_TABLE, "TransferGraph's model names are Hub ids "
                      "(AutoModelForImageClassification checkpoints); availability today not checked", "transformers")
    if source_id in ("sfda_supervised_finetune", "rept_supervised_headonly", "logme_tllib_supervised_finetune"):
        return _tv(arch.get("torchvision", name), f"{source_id}.json")
    if source_id == "modelspider_sampled_task_ranks":
        if name.startswith("FTD_"):
            return _entry("unmapped", None, NAME_IN_TABLE, "Model Spider's source-fine-tuned checkpoint (distributed "
                          "on Google Drive, not on the Hub)")
        return _tv(name, "logme_tllib_supervised_finetune.json")  # the single-source zoo = TLlib's models
    if source_id == "modelspider_multisource_finetune":
        return _entry("unmapped", None, NAME_IN_TABLE, "Model Spider's checkpoint fine-tuned on source "
                      f"{arch.get('source_dataset', '?')} (distributed on Google Drive, not on the Hub); whether the "
                      "ImageNet-source ones are torchvision's weights is not stated")
    if source_id in ("sfda_selfsupervised_finetune", "ncti_selfsupervised_extra"):
        return _entry("unmapped", None, SSL_EVIDENCE, SSL_NOTE)
    if source_id == "emms_vit_finetune":
        if name in EMMS_UNMAPPED:
            status, hub, library, note = EMMS_UNMAPPED[name]
            return _entry(status, hub, ZETATECH_EVIDENCE if hub else "emms_vit_finetune.json hf_hub (null)", note,
                          library)
        hub = raw["hf_hub"][name]
        return _entry("confirmed", hub, HUB_EVIDENCE[hub], "the timm config's weights are the official release EMMS "
                      "loads (source table's hf_hub_note)", "timm")
    if source_id == "emms_captioning_finetune":
        return _entry("unmapped", None, NAME_IN_TABLE, "an encoder-decoder captioning pair fine-tuned by EMMS; no "
                      "checkpoint was published")
    if source_id == "parc_finetune":
        architecture, src = name.split("|", 1)
        if src == "imagenet":
            if architecture in TV_PORTS:
                hub = TV_PORTS[architecture]
                return _entry("unconfirmed", hub, f"{PARC_EVIDENCE}; {HUB_EVIDENCE[hub]}",
                              "PARC's ImageNet-source model of this architecture; that it is torchvision's "
                              "IMAGENET1K_V1 checkpoint is not stated in the PARC repository", "timm")
            return _entry("unmapped", None, PARC_EVIDENCE, TV_UNPORTED[architecture])
        if src in ("swav_imagenet", "moco_imagenet", "simclr_imagenet", "pirl_imagenet", "npid_imagenet"):
            return _entry("unmapped", None, SSL_EVIDENCE, "crowd-sourced self-supervised ResNet (VISSL/authors' "
                          "release); no Hub port of these weights was found")
        return _entry("unmapped", None, PARC_EVIDENCE, "PARC model trained on source "
                      f"{src!r}: either trained by the PARC authors (SharePoint archive) or a crowd-sourced checkpoint "
                      "(detectron2 / VISSL / semi-supervised model zoos); no Hub repository with these weights was "
                      "found")
    if source_id == "stable_transfer_arch_selection":
        return _entry("unmapped", None, "stable_transfer_arch_selection.json hf_hub (null)",
                      f"Keras application weights (tf.keras.applications.{arch.get('keras', name)}); timm's "
                      f"{arch.get('timm_closest') or 'nearest'} weights are a different training or port, so no exact "
                      "Hub port was found")
    if source_id == "stable_transfer_segmentation_sources":
        return _entry("unmapped", None, arch.get("tfhub", NAME_IN_TABLE), "HRNetV2-W48 segmentation checkpoint on "
                      "TF-Hub, not on the Hugging Face Hub")
    raise SystemExit(f"build_published.py: no model rule for source {source_id!r}; add one.")


# -- tasks -------------------------------------------------------------------------------

def _ds(status: str, dataset_id: str | None, config: str | None, splits: list[str], label: str | None,
        image: str | None, evidence: str, note: str = "") -> dict:
    return {"dataset_id": dataset_id, "config": config, "splits": splits, "label_column": label,
            "image_column": image, "status": status, "evidence": evidence, "note": note}


COLUMNS_NOT_SEEN = "the label and image columns were not seen on a stored page"

#: fennec's datasets, each checked with the search tool.
DATASETS = {
    "cifar10": _ds("confirmed", "uoft-cs/cifar10", "plain_text", ["train", "test"], "label", "img",
                   "https://huggingface.co/datasets/uoft-cs/cifar10/tree/28e30c69acd337c73df8519371438aae150b9c74; "
                   "https://tensorflow.org/datasets/community_catalog/huggingface/cifar10 (plain_text: img, label; "
                   "train 50000, test 10000)"),
    "cifar100": _ds("confirmed", "uoft-cs/cifar100", None, ["train", "test"], "fine_label", "img",
                    "https://huggingface.co/datasets/uoft-cs/cifar100/blob/f90290ff746108cbf7c51241dc854ba9a118d999/"
                    "README.md (features img, fine_label, coarse_label)",
                    "the published tables use the 100 fine classes (fine_label), not coarse_label"),
    "pets": _ds("confirmed", "timm/oxford-iiit-pet", None, ["train", "test"], "label", "image",
                "https://huggingface.co/datasets/timm/oxford-iiit-pet/tree/main; features image, label, image_id, "
                "label_cat_dog (train 3680, test 3669): https://huggingface.co/datasets/visual-layer/"
                "oxford-iiit-pet-vl-enriched/raw/6c030d99763f5ffc5bc4e7ece652e3c0b57df72f/merge_w_timm_pets.ipynb",
                "label = the 37 breeds (label_cat_dog is the 2-class variant)"),
    "dtd": _ds("confirmed", "tanganke/dtd", None, ["train", "test"], "label", "image",
               "https://huggingface.co/datasets/tanganke/dtd/blob/main/README.md "
               "(image, label; train 3760, test 1880)"),
    "flowers": _ds("confirmed", "nelorth/oxford-flowers", None, ["train", "test"], "label", "image",
                   "https://huggingface.co/datasets/nelorth/oxford-flowers/blob/main/README.md (image, label); "
                   "https://huggingface.co/datasets/nelorth/oxford-flowers/tree/refs%2Fpr%2F1 (data/ parquet)",
                   "class names are the original flower ids as strings ('1' … '102'), sorted as strings"),
    "eurosat": _ds("confirmed", "timm/eurosat-rgb", None, ["train", "validation", "test"], "label", "image",
                   "https://huggingface.co/datasets/timm/eurosat-rgb/blob/31526c4882c00059b3ba7de4b23a9e8872e0a172/"
                   "README.md (image, label, image_id; train 16200, validation 5400, test 5400)",
                   "the RGB version; splits from google-research remote_sensing_representations"),
    "resisc45": _ds("confirmed", "timm/resisc45", None, ["train", "validation", "test"], "label", "image",
                    "https://huggingface.co/datasets/timm/resisc45 (image, label, image_id); "
                    "https://huggingface.co/datasets/timm/resisc45/viewer/default/train (train 18.9k, validation 6.3k, "
                    "test 6.3k)"),
    "food101": _ds("unconfirmed", "ethz/food101", None, ["train", "validation"], "label", "image",
                   "https://huggingface.co/datasets/ethz/food101/viewer/default/train (default; train 75.8k, "
                   "validation 25.3k)", COLUMNS_NOT_SEEN),
    "aircraft": _ds("unconfirmed", "HuggingFaceM4/FGVC-Aircraft", None, [], None, None,
                    "https://huggingface.co/datasets/HuggingFaceM4/FGVC-Aircraft/tree/"
                    "e18a7c97147c90dc7f4a60d74a7f4258e9264e97 (converted to parquet)",
                    "configs (variant / family / manufacturer), splits and columns were not seen; the tables use the "
                    "100 variants"),
    "cars": _ds("unconfirmed", "tanganke/stanford_cars", None, ["train", "test"], None, None,
                "https://huggingface.co/datasets/tanganke/stanford_cars/viewer/default/train?p=4 (default; train "
                "8.14k, test 8.04k, plus corrupted copies of test)", COLUMNS_NOT_SEEN),
    "sun397": _ds("confirmed", "tanganke/sun397", None, ["train", "test"], "label", "image",
                  "https://huggingface.co/datasets/tanganke/sun397 (viewer: image, label); https://huggingface.co/"
                  "datasets/tanganke/sun397/viewer/default/train?p=198 (default; train 19.9k, test 19.9k)",
                  "one 19,850/19,850 partition; the sources' SUN397 splits may differ"),
    "caltech101": _ds("unconfirmed", "HuggingFaceM4/Caltech-101", None, [], None, None,
                      "https://huggingface.co/datasets/HuggingFaceM4/Caltech-101/tree/"
                      "7f3672cac15913b2f1bcd58e8094690dcbcd77b1 (a loading script and a zip)",
                      "script-based (fennec runs no dataset script); configs, splits and columns not seen"),
    "svhn": _ds("unconfirmed", "ufldl-stanford/svhn", "cropped_digits", ["train", "test", "extra"], None, None,
                "https://huggingface.co/datasets/ufldl-stanford/svhn/viewer/cropped_digits/train?p=730 "
                "(cropped_digits: train 73.3k, test 26k, extra 531k)", COLUMNS_NOT_SEEN),
    "smallnorb_azimuth": _ds("unconfirmed", "clip-benchmark/wds_vtab-smallnorb_label_azimuth", None, ["train", "test"],
                             None, None, "https://huggingface.co/datasets/clip-benchmark/"
                             "wds_vtab-smallnorb_label_azimuth/viewer/default/train (train 24.3k, test 12.2k)",
                             "a webdataset (tar shards); the label field was not seen"),
    "smallnorb_elevation": _ds("unconfirmed", "clip-benchmark/wds_vtab-smallnorb_label_elevation", None,
                               ["train", "test"], None, None, "https://huggingface.co/datasets/clip-benchmark/"
                               "wds_vtab-smallnorb_label_elevation/tree/main/train (classnames 0-8)",
                               "a webdataset (tar shards); the label field was not seen"),
    "stl10": _ds("unconfirmed", "tanganke/stl10", None, ["train", "test"], "label", "image",
                 "https://huggingface.co/datasets/tanganke/stl10/tree/main/data (train and test parquet); columns from "
                 "a derived subset's card: https://huggingface.co/datasets/Chiranjeev007/STL-10_Subset/commit/"
                 "293369ba0d5368f87dde6f133fd20282d4a7d86c", "the columns were seen on a derived dataset's card only"),
    "cub200": _ds("confirmed", "bentrevett/caltech-ucsd-birds-200-2011", None, ["train", "test"], "label", "image",
                  "https://huggingface.co/datasets/bentrevett/caltech-ucsd-birds-200-2011/blob/"
                  "1ef09e021b0b65b40337f6f285909656f407f6e0/README.md?code=true (image, label: 200 classes, bbox); "
                  "https://huggingface.co/datasets/bentrevett/caltech-ucsd-birds-200-2011/viewer/default/train?p=2 "
                  "(default; train 5.99k, test 5.79k)"),
    "stanford_dogs": _ds("unconfirmed", "amaye15/stanford-dogs", None, ["train", "test"], None, None,
                         "https://huggingface.co/datasets/amaye15/stanford-dogs/viewer/default/train?p=5 (default; "
                         "train 14.4k, test 6.17k)", COLUMNS_NOT_SEEN + "; its split (14.4k/6.17k) is not the official "
                         "12,000/8,580 one (https://www.tensorflow.org/datasets/catalog/stanford_dogs.md.txt)"),
    "imagenette": _ds("unconfirmed", "frgfm/imagenette", "full_size", ["train", "validation"], None, None,
                      "https://huggingface.co/datasets/frgfm/imagenette/viewer/160px/train?p=6 (configs 160px, 320px, "
                      "full_size; train 9.47k, validation 3.93k)",
                      "script-based (fennec runs no dataset script); which resolution the source used and the columns "
                      "were not seen"),
}

#: Per source: task name -> fennec dataset, or (None, reason) when unmapped.
NOT_CLASSIFICATION = "not an image-classification dataset: fennec describes single-label classification tasks"
NOT_FOUND = "no Hub dataset id for it was found with the search tool"
SFDA11 = {"aircraft": "aircraft", "caltech101": "caltech101", "cars": "cars", "cifar10": "cifar10",
          "cifar100": "cifar100", "dtd": "dtd", "flowers": "flowers", "food": "food101", "pets": "pets",
          "sun397": "sun397",
          "voc2007": (None, "PASCAL VOC 2007 is multi-label here (11-point mAP); " + NOT_CLASSIFICATION)}
TASK_ALIASES: dict[str, dict[str, str | tuple[None, str]]] = {
    "sfda_supervised_finetune": SFDA11, "sfda_selfsupervised_finetune": SFDA11, "rept_supervised_headonly": SFDA11,
    "emms_vit_finetune": SFDA11,
    "ncti_selfsupervised_extra": {"resisc": "resisc45", "eurosat": "eurosat"},
    "logme_tllib_supervised_finetune": {
        "Aircraft": "aircraft", "Caltech101": "caltech101", "CIFAR10": "cifar10", "CIFAR100": "cifar100",
        "Cars": "cars", "DTD": "dtd", "Pet": "pets", "SUN397": "sun397",
        "dSprites": (None, "a regression target (negated error); " + NOT_CLASSIFICATION),
        "UTKFace": (None, "a regression target (age, negated error); " + NOT_CLASSIFICATION)},
    "modelspider_multisource_finetune": {
        "STL10": "stl10", "CUB2011": "cub200", "Pet": "pets", "DTD": "dtd", "Aircraft": "aircraft",
        "VLCS": (None, "VLCS (domain-generalisation benchmark): " + NOT_FOUND),
        "AID": (None, "AID (aerial scenes): " + NOT_FOUND)},
    "transfergraph_hf_finetune": {
        "cifar100": "cifar100", "pets": "pets", "flowers": "flowers", "eurosat": "eurosat",
        "caltech101": "caltech101", "stanfordcars": "cars", "dtd": "dtd", "svhn": "svhn", "food101": "food101",
        "smallnorb_label_elevation": "smallnorb_elevation", "smallnorb_label_azimuth": "smallnorb_azimuth",
        "kitti": (None, "VTAB's KITTI closest-vehicle-distance task: " + NOT_FOUND),
        "diabetic_retinopathy_detection": (None, "Kaggle diabetic retinopathy (VTAB): " + NOT_FOUND)},
    "parc_finetune": {
        "cifar10": "cifar10", "oxford_pets": "pets", "cub200": "cub200", "caltech101": "caltech101",
        "stanford_dogs": "stanford_dogs", "nabird": (None, "NABirds: " + NOT_FOUND),
        "voc2007": SFDA11["voc2007"]},
    "stable_transfer_arch_selection": {
        "caltech_birds2011": "cub200", "cifar10": "cifar10", "cifar100": "cifar100", "dtd": "dtd",
        "imagenette": "imagenette", "oxford_flowers102": "flowers", "oxford_iiit_pet": "pets",
        "stanford_dogs": "stanford_dogs", "sun397": "sun397"},
}
TASK_ALIASES["transfergraph_metric_scores"] = TASK_ALIASES["transfergraph_hf_finetune"]


def task_entry(source_id: str, task: str, src: published.PublishedSource) -> dict:
    """The mapping of one task of one source."""
    if src.task_type != "image-classification":
        return {"dataset": None, "status": "unmapped", "evidence": NAME_IN_TABLE,
                "note": f"a {src.task_type} task; {NOT_CLASSIFICATION}"}
    if source_id == "modelspider_sampled_task_ranks":
        return {"dataset": None, "status": "unmapped", "evidence": NAME_IN_TABLE,
                "note": "a Model Spider task sampled from the classes of 2-4 datasets (see task_composition in the "
                        "source file); no Hub dataset holds it"}
    try:
        target = TASK_ALIASES[source_id][task]
    except KeyError:
        raise SystemExit(f"build_published.py: no task rule for {source_id}/{task}; add one.") from None
    if isinstance(target, tuple):
        return {"dataset": None, "status": "unmapped", "evidence": NAME_IN_TABLE, "note": target[1]}
    return {"dataset": target}


# -- building ----------------------------------------------------------------------------


def build_models() -> dict:
    out: dict = {"schema_version": published.SCHEMA_VERSION,
                 "about": "Per source, per published model: the Hub repository with the same weights. "
                          "Built by scripts/build_published.py.", "sources": {}}
    for src in published.sources():
        if not src.variants:
            continue
        raw = published.load_raw(src.source_id)
        models = dict.fromkeys(m for v in src.variants for m in published.load_table(src.source_id, v.name).models)
        out["sources"][src.source_id] = {m: model_entry(src.source_id, m, raw) for m in models}
    return out


def build_tasks() -> dict:
    out: dict = {"schema_version": published.SCHEMA_VERSION,
                 "about": "Per source, per published task: the fennec dataset it is (datasets: Hub id, config, "
                          "splits, columns). Built by scripts/build_published.py.",
                 "datasets": DATASETS, "sources": {}}
    for src in published.sources():
        if not src.variants:
            continue
        tasks = dict.fromkeys(t for v in src.variants for t in published.load_table(src.source_id, v.name).tasks)
        out["sources"][src.source_id] = {t: task_entry(src.source_id, t, src) for t in tasks}
    return out


def render_readme() -> str:
    """``fennec/published/README.md``: what the package holds and the mapping counts."""
    counts = published.summary()
    sampled = len(published.task_mapping("modelspider_sampled_task_ranks"))
    rows = "\n".join(
        f"| {label} | {c['confirmed']} | {c['unconfirmed']} | {c['unmapped']} | {sum(c.values())} |"
        for label, c in (("published models (source, name)", counts["models"]),
                         ("distinct Hub model ids", counts["hub_models"]),
                         ("published tasks (source, name)", counts["tasks"]),
                         ("of which classification tasks with accuracies", counts["classification_tasks"]),
                         ("their distinct datasets (unmapped: distinct names)", counts["datasets"])))
    sources = "\n".join(
        f"| `{s.source_id}` | {s.kind} | {s.task_type} | "
        f"{', '.join(f'{v.name} ({v.scale})' for v in s.variants) or '-'} | {s.repo} `{s.path}` @{s.commit[:7]} |"
        for s in published.sources())
    return f"""# fennec.published: the published fine-tuning history

<!-- Generated by scripts/build_published.py from the package data; do not edit by hand. -->

The published transfer-result tables, as package data (`data/tables/`, byte for byte as
transcribed from their repositories; `data/tables/README.md` describes them), with a mapping
of every published model to the Hub repository holding the same weights (`data/models.json`)
and of every published task to a Hub dataset, config, splits and columns (`data/tasks.json`).
Each entry has a `status` and the `evidence` it rests on (a stored Hub page or document found
with the search tool, or `name in source table`); unmapped and unconfirmed entries say why in
`note`. Load them with `fennec.published` (`sources()`, `load_table()`, `model_mapping()`,
`task_mapping()`).

## Mapping counts

| | confirmed | unconfirmed | unmapped | total |
|---|---:|---:|---:|---:|
{rows}

`confirmed`: the Hub id is named by the source table or shown by a stored Hub page (for
torchvision models, timm's `tv_in1k` copy of the same weights); `unconfirmed`: a plausible
id whose weights, config, splits or columns were not all seen; `unmapped`: none. Most
unmapped tasks are Model Spider's {sampled} rank-only tasks sampled from several datasets,
the captioning and segmentation targets, and multi-label VOC 2007.

## Sources

Different sources are different protocols and scales and are never merged.

| source | kind | task type | tables (scale) | from |
|---|---|---|---|---|
{sources}
"""


def _dump(data: dict) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=Path, default=DEFAULT_TABLES, help="the shared transfer-results folder "
                        f"(default: {DEFAULT_TABLES}); skipped when absent")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)

    stale = []
    if args.tables.is_dir():
        for src in sorted([*args.tables.glob("*.json"), args.tables / "README.md"]):
            dest = published.TABLES_DIR / src.name
            if not dest.exists() or dest.read_bytes() != src.read_bytes():
                stale.append(dest)
                if not args.check:
                    dest.write_bytes(src.read_bytes())
    for path, text in ((published.MODELS_FILE, _dump(build_models())), (published.TASKS_FILE, _dump(build_tasks()))):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    published._reset()
    readme = render_readme()
    if not README.exists() or README.read_text(encoding="utf-8") != readme:
        stale.append(README)
        if not args.check:
            README.write_text(readme, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
