"""``SMARModel``: the query tower and the three-view item tower, with save/load as a directory."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pydantic import ValidationError
from safetensors.torch import load_file, save
from torch import nn

from .catalog import MAX_TEXT_CHARS, joined_text
from .checkpoint import CHECKPOINT_DIR
from .config import FORMAT_VERSION, ItemView, SMARConfig
from .encoders import ImageEncoder, ImageStates, TextEncoder, TextStates
from .errors import ModelError, RowError, load_problem
from .heads import CrossAttentionFusion, ProjectionHead
from .wording import names_colour

ITEM_VIEWS: tuple[ItemView, ...] = ("fused", "text", "image")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"
HEAD_PREFIXES = ("query_head.", "text_head.", "image_head.", "fusion.", "logit_scale")


class SMARModel(nn.Module):
    """Semantic-enhanced Modality-Asymmetric Retrieval model.

    Queries are text only; items have a text view, an image view and a fused view (cross-attention
    between title tokens and image patches). All outputs are L2-normalised ``dim``-sized vectors.
    """

    def __init__(self, config: SMARConfig | None = None) -> None:
        super().__init__()
        self.config = config or SMARConfig()
        cfg = self.config
        if cfg.item_text_tuned_layers and not cfg.query_tuned_layers:
            raise ModelError("item_text_tuned_layers (--item-text-tuned-layers) fine-tunes the items' text encoder, "
                             "which queries share unless they have their own copy: set query_tuned_layers "
                             "(--query-tuned-layers) too")
        self.text_encoder = TextEncoder(cfg.text_encoder)
        # The asymmetric query tower: its own encoder copy when training fine-tunes its top layers.
        self.query_encoder = TextEncoder(cfg.text_encoder) if cfg.query_tuned_layers else None
        self.image_encoder = ImageEncoder(cfg.image_encoder)
        text_dim, token_dim, image_dim = (self.text_encoder.hidden_size, self.text_encoder.token_size,
                                          self.image_encoder.state_dim)
        self.query_head = ProjectionHead(text_dim, cfg.dim, cfg.dropout)
        self.text_head = ProjectionHead(text_dim, cfg.dim, cfg.dropout)
        self.image_head = ProjectionHead(image_dim, cfg.dim, cfg.dropout)
        self.fusion = CrossAttentionFusion(token_dim, text_dim, image_dim, cfg.fusion_dim, cfg.dim,
                                           cfg.fusion_heads, cfg.dropout)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.05))))
        self.fingerprint = f"unsaved-{uuid.uuid4().hex}"  # set from the weights file by load()
        self.eval()

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def query_text_encoder(self) -> TextEncoder:
        """The query tower's text encoder: its own fine-tuned copy, or the items' frozen one."""
        return self.query_encoder if self.query_encoder is not None else self.text_encoder

    def query_tuned_prefixes(self) -> list[str]:
        """State-dict prefixes of the query encoder's fine-tuned layers (none without ``query_tuned_layers``)."""
        if self.query_encoder is None:
            return []
        return self._top_text_layers("query_encoder", self.config.query_tuned_layers, "query_tuned_layers")

    def item_text_tuned_prefixes(self) -> list[str]:
        """State-dict prefixes of the item text encoder's fine-tuned layers (none without item_text_tuned_layers)."""
        return self._top_text_layers("text_encoder", self.config.item_text_tuned_layers, "item_text_tuned_layers")

    def _top_text_layers(self, encoder: str, count: int, setting: str) -> list[str]:
        """Prefixes of the top ``count`` layers of the text encoder at attribute ``encoder``, as ``setting`` asks."""
        if not count:
            return []
        option = "--" + setting.replace("_", "-")
        return [f"{encoder}.{p}" for p in getattr(self, encoder).top_layers(count, f"{setting} ({option})")]

    def image_tuned_prefixes(self) -> list[str]:
        """State-dict prefixes of the image backbone's fine-tuned blocks (none without ``image_tuned_blocks``)."""
        if not self.config.image_tuned_blocks:
            return []
        return [f"image_encoder.{p}" for p in self.image_encoder.top_blocks(self.config.image_tuned_blocks)]

    # ----- heads over backbone states (used by encoding and by training on cached states) -----
    def query_vectors(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.query_head(pooled)

    def item_vectors(self, text: TextStates, image: ImageStates, item_texts: Sequence[str] | None = None,
                     mirrored: ImageStates | None = None) -> dict[ItemView, torch.Tensor]:
        """The three item views; given the states of the mirrored images, the image and fused views average the two
        images' (``config.mirror_average``); given the items' texts, the fused view goes through the second stage."""
        views: dict[ItemView, torch.Tensor] = {view: self.item_view(view, text, image)
                                               for view in ("text", "image", "fused")}
        if mirrored is not None:
            for view in ("image", "fused"):
                views[view] = nn.functional.normalize(views[view] + self.item_view(view, text, mirrored), dim=-1)
        if item_texts is not None and self.config.blends_views:
            views["fused"] = self.second_stage(views["fused"], views["text"], views["image"], item_texts)
        return views

    def item_view(self, view: ItemView, text: TextStates | None, image: ImageStates | None) -> torch.Tensor:
        """One item view, from the states it reads: text for "text", image for "image", both for "fused"."""
        if (text is None and view != "image") or (image is None and view != "text"):
            raise ValueError(f"the {view} item view needs {'text and image' if view == 'fused' else view} states")
        if view == "text":
            return self.text_head(text.pooled)
        if view == "image":
            return self.image_head(image.pooled)
        return self.fusion(text.tokens, text.mask, text.pooled, image.tokens, image.pooled)

    def second_stage(self, fused: torch.Tensor, text: torch.Tensor, image: torch.Tensor,
                     item_texts: Sequence[str]) -> torch.Tensor:
        """The stored vector: ``normalise(fused + t * text + b * image)``, where ``t`` is ``config.text_blend`` for
        items whose text names a colour and ``config.other_text_blend`` for the others, ``b`` ``config.image_blend``.

        Items whose title names the colour lean on their text view, which carries the colour the title states;
        without one, only the image shows it. The weights are chosen on held-out products
        (benchmarks/view_blend.py); training sees them only with ``TrainConfig.train_stored_vector``.
        """
        return self.blend_views(fused, text, image, torch.tensor([names_colour(t) for t in item_texts]))

    def blend_views(self, fused: torch.Tensor, text: torch.Tensor, image: torch.Tensor,
                    colour_named: torch.Tensor) -> torch.Tensor:
        """``second_stage`` given, per item, whether its text names a colour (a bool tensor)."""
        cfg = self.config
        weights = torch.where(colour_named.to(fused.device), cfg.text_blend, cfg.other_text_blend)
        return nn.functional.normalize(fused + weights.to(fused.dtype).unsqueeze(1) * text + cfg.image_blend * image,
                                       dim=-1)

    # ----- public encoding API -----
    def item_text(self, row: dict, text_fields: Sequence[str] | None = None) -> str:
        """The text an item is known by, as a catalog row's: its ``text_fields`` (default: the model's) stripped and
        joined with spaces."""
        fields = text_fields or self.config.text_fields
        return joined_text({f: str(row[f]) for f in fields if row.get(f) is not None}, fields)

    @torch.inference_mode()
    def encode_queries(self, queries: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Encode shopper queries into an ``(n, dim)`` float32 array of unit vectors."""
        if isinstance(queries, str):
            raise TypeError("encode_queries takes a list of queries, not one string: use [query]")
        check_count("batch_size", batch_size)
        queries = list(queries)
        out = [self.query_vectors(self.query_text_encoder.encode(queries[i : i + batch_size]).pooled)
               for i in range(0, len(queries), batch_size)]
        return _to_numpy(out, self.dim)

    @torch.inference_mode()
    def encode_item_inputs(self, texts: Sequence[str], images: Sequence[Image.Image | torch.Tensor],
                           view: ItemView = "fused") -> np.ndarray:
        """Encode items given as texts and images (PIL or preprocessed tensors), one vector each."""
        check_view(view)
        if len(texts) != len(images):
            raise ValueError(f"{len(texts)} texts but {len(images)} images")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        pixels = torch.stack([im if isinstance(im, torch.Tensor) else self.image_encoder.preprocess(im)
                              for im in images])
        mirrored = self.image_encoder(pixels.flip(-1)) if self.config.mirror_average else None
        views = self.item_vectors(self.text_encoder.encode(list(texts)), self.image_encoder(pixels), texts, mirrored)
        return _to_numpy([views[view]], self.dim)

    def encode_items(self, rows: Iterable[dict], batch_size: int = 32, view: ItemView = "fused",
                     image_field: str = "image", base_dir: str | Path | None = None,
                     allow_outside_images: bool = False, text_fields: Sequence[str] | None = None) -> np.ndarray:
        """Encode catalog rows (dicts with the text fields and an image path, URL or PIL image), one vector per row
        in order. ``text_fields`` (default: the model's) and ``image_field`` name the fields, as ``FieldMapping``
        does for the indexer. Relative image paths resolve against ``base_dir`` and may not leave it unless
        ``allow_outside_images``."""
        from .images import ImageLoader

        check_view(view)
        check_count("batch_size", batch_size)
        if isinstance(rows, dict):
            raise TypeError("encode_items takes a list of rows, not one dict: use [row]")
        loader = ImageLoader(base_dir=base_dir, allow_outside=allow_outside_images)
        chunks: list[np.ndarray] = []
        batch: list[tuple[int, dict]] = []
        if isinstance(text_fields, str) or text_fields is not None and not list(text_fields):
            raise TypeError(f"text_fields is a non-empty list of field names, such as ['title'], got {text_fields!r}")
        fields = list(text_fields or self.config.text_fields)
        for number, row in enumerate([*rows, None]):
            if row is not None:
                self._check_row(number, row, image_field, fields)
                batch.append((number, row))
            if batch and (row is None or len(batch) == batch_size):
                images = [_row_image(loader, n, r[image_field]) for n, r in batch]
                chunks.append(self.encode_item_inputs([self.item_text(r, fields) for _, r in batch], images, view))
                batch = []
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)

    @staticmethod
    def _check_row(number: int, row: Any, image_field: str, text_fields: list[str]) -> None:
        """The checks ``read_catalog`` makes on what is encoded (the text fields and the image), so encode_items and
        the indexer agree on what is encodable. Ids and payload fields are checked where they are stored."""
        if not isinstance(row, dict):
            raise RowError(f"row {number} must be a dict, got {type(row).__name__}")
        if row.get(image_field) is None:
            raise RowError(f"row {number} has no image field {image_field!r} (name yours with image_field=...)")
        for field in text_fields:
            if row.get(field) is not None and not isinstance(row[field], str):
                raise RowError(f"row {number}: field {field!r} must be a string, got {type(row[field]).__name__}")
        text = joined_text(row, text_fields)  # measured as the catalog does
        if not text.strip():
            raise RowError(f"row {number} has none of the text fields {text_fields} (or they are blank; name yours "
                           "with text_fields=[...])")
        if len(text) > MAX_TEXT_CHARS:
            raise RowError(f"row {number}: the text fields {text_fields} hold {len(text)} characters, "
                           f"over the {MAX_TEXT_CHARS} a catalog row may have")

    @property
    def content_fingerprint(self) -> str:
        """The model files' digest plus the config as it is now: settings changed in code after ``load()``
        (``mirror_average``, the second stage's blend weights) change what an item is encoded to."""
        config = hashlib.sha256(self.config.model_dump_json().encode()).hexdigest()[:16]
        return f"{self.fingerprint}:{config}"

    # ----- persistence -----
    def _saved_prefixes(self) -> tuple[str, ...]:
        return HEAD_PREFIXES + tuple(self.config.trained_backbone_prefixes)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (heads plus fine-tuned backbone parts)."""
        directory = Path(directory)
        prefixes, backbone = self._saved_prefixes(), tuple(self.config.trained_backbone_prefixes)
        # the frozen image backbone in float16; fine-tuned layers in float32, as they were trained and scored
        tuned = (*self.query_tuned_prefixes(), *self.item_text_tuned_prefixes(), *self.image_tuned_prefixes())
        state = {k: _storage_tensor(v, half=k.startswith(backbone) and not k.startswith(tuned))
                 for k, v in self.state_dict().items() if k.startswith(prefixes)}
        weights = directory / WEIGHTS_FILE
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _write_files({weights: save(state, metadata={"format": "pt", "library": "smar-sdk"}),
                          directory / CONFIG_FILE: (self.config.model_dump_json(indent=2) + "\n").encode()})
        except OSError as exc:
            raise ModelError(f"cannot save the model to {directory}: {exc.strerror or exc}") from exc
        self.fingerprint = file_digest(directory / CONFIG_FILE, weights)  # as SMARModel.load(directory) will say
        return directory

    @classmethod
    def load(cls, directory: str | Path | None = None) -> SMARModel:
        """Load a model directory; with no argument, the default model shipped in the package."""
        directory = Path(directory) if directory is not None else DEFAULT_MODEL_DIR
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        if directory.is_file():
            raise ModelError(f"{directory} is a file; give the model directory holding {CONFIG_FILE} and "
                             f"{WEIGHTS_FILE}")
        if not directory.is_dir():
            raise ModelError(f"model directory {directory} does not exist")
        if not weights_path.is_file():
            pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
            why = f"; refusing pickle files {pickles}, convert them to safetensors" if pickles else ""
            if (directory / CHECKPOINT_DIR).is_dir():
                why += (f"; it holds the checkpoint of an unfinished training run ({CHECKPOINT_DIR}): run the same "
                        "smar-sdk train command again to finish it")
            raise ModelError(f"model directory {directory} has no {WEIGHTS_FILE}{why}")
        config = read_config(config_path)
        model = cls(config)
        try:
            state = load_file(str(weights_path))
        except Exception as exc:
            raise ModelError(f"{weights_path} is not a readable safetensors file: {exc}") from exc
        expected = {k for k in model.state_dict() if k.startswith(model._saved_prefixes())}
        if missing := sorted(expected - set(state)):
            raise ModelError(f"{weights_path} lacks {len(missing)} tensors, e.g. {missing[:3]}; was it saved "
                             "by this model configuration?")
        if unused := sorted(set(state) - expected):  # dropped, they would make another model than was trained
            raise ModelError(f"{weights_path} holds {len(unused)} tensors {config_path} does not use, e.g. "
                             f"{unused[:3]}; was config.json edited (the tuned layers or blocks, the encoders), or "
                             "the weights saved by another model? Restore the config they were saved with")
        try:
            model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise ModelError(f"{weights_path} does not fit {config_path}: {load_problem(exc)}; was config.json "
                             "edited, or the weights saved by another model?") from exc
        model.fingerprint = file_digest(config_path, weights_path)
        return model.eval()


def read_config(path: str | Path) -> SMARConfig:
    """A SMAR config file (a model directory's, or one to train from), with one clear ModelError for a missing,
    unreadable, newer or invalid file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        missing = f"model directory {path.parent} has no {CONFIG_FILE}" if path.name == CONFIG_FILE else \
            f"{path} not found"
        raise ModelError(missing) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} cannot be read as UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not a valid SMAR config: {exc}") from exc
    version = raw.get("format_version", 1) if isinstance(raw, dict) else 1
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ModelError(f"{path} is model format {version}, written by a newer smar-sdk (this one reads format "
                         f"{FORMAT_VERSION}); upgrade with `pip install -U smar-sdk`")
    try:
        return SMARConfig.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(f"{path} is not a valid SMAR config: {exc}") from exc


def check_view(view: str) -> None:
    if view not in ITEM_VIEWS:
        raise ValueError(f"view must be one of {ITEM_VIEWS}, got {view!r}")


def check_count(name: str, value: int) -> None:
    """A count argument (``batch_size``, ``loader_threads``) must be an integer of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:24]


def _write_files(contents: dict[Path, bytes]) -> None:
    """Write every file whole before any replaces its old version: a failure (a full disk) leaves the old files as
    they were and no partial one; only a crash between the final renames could pair a new file with an old one."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in contents.items():
            staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            staged.append((staging, path))
            staging.write_bytes(data)  # mode by umask, as a plain write
        for staging, path in staged:
            staging.replace(path)
    finally:
        for staging, _ in staged:
            staging.unlink(missing_ok=True)


def _storage_tensor(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    """Backbone weights are stored in float16 to keep model folders small; heads stay float32."""
    tensor = tensor.detach().contiguous().clone()
    return tensor.half() if half and tensor.is_floating_point() else tensor


def _row_image(loader: Any, number: int, reference: Any) -> Image.Image:
    """Load one row's image; its error names the row."""
    try:
        return loader.load(reference)
    except RowError as exc:
        raise type(exc)(f"row {number}: {exc}") from exc


def _to_numpy(chunks: list[torch.Tensor], dim: int) -> np.ndarray:
    if not chunks:
        return np.zeros((0, dim), dtype=np.float32)
    return torch.cat(chunks).float().cpu().numpy().astype(np.float32, copy=False)
