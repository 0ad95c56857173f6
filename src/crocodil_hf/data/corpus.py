"""Program corpora as `datasets.Dataset`s: from a directory of source files or any Hub/local dataset with a text
column. The offline default is the CPython standard library (tests excluded), present on every machine.

Each example is one program (or one piece of a long file split at top-level definitions, never mid-line) whose
tokens fit `max_length` together with BOS and EOS. Train/validation membership is decided by a hash of the file path,
so it never changes when files are added. Built datasets are cached with `save_to_disk` under a key of the
configuration (source, tokenizer, lengths, split).
"""

import hashlib
import json
import logging
import os
import sysconfig
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk

from ..utils.files import DATA_FILE_BUILDERS, NotText, decode_text

logger = logging.getLogger(__name__)

TOP_LEVEL_STARTS = ("def ", "async def ", "class ", "@", "if __name__")


def stdlib_dir() -> Path:
    """The CPython standard library of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


def is_test_path(relative: str) -> bool:
    parts = Path(relative).parts
    name = parts[-1]
    return (
        any(p in ("test", "tests", "idle_test", "testing") for p in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
    )


@dataclass
class CorpusSummary:
    """What building a corpus read and skipped."""

    files_seen: int = 0
    files_used: int = 0
    skipped_binary: int = 0
    skipped_empty: int = 0
    skipped_non_utf8: int = 0
    skipped_unreadable: int = 0
    skipped_syntax: int = 0
    skipped_tests: int = 0
    programs: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return (
            self.skipped_binary
            + self.skipped_empty
            + self.skipped_non_utf8
            + self.skipped_unreadable
            + self.skipped_syntax
        )

    def __str__(self) -> str:
        return (
            f"{self.files_used}/{self.files_seen} files used; skipped {self.skipped_binary} binary, "
            f"{self.skipped_empty} empty, {self.skipped_non_utf8} non-UTF-8, {self.skipped_unreadable} unreadable, "
            f"{self.skipped_syntax} not parsing, {self.skipped_tests} tests; programs {self.programs}; tokens {self.tokens}"
        )


def read_source_files(
    root: str | os.PathLike,
    extensions: tuple[str, ...] = (".py",),
    exclude_tests: bool = True,
    exclude_dirs: tuple[str, ...] = ("site-packages", "dist-packages", "__pycache__", ".git"),
    summary: CorpusSummary | None = None,
) -> Iterable[tuple[str, str]]:
    """Yield `(relative_path, text)` for readable UTF-8 text files under `root`, in sorted order.

    Binary (NUL bytes), empty (whitespace only), non-UTF-8 and unreadable files, and `.py` files that do not parse
    (`ast.parse`), are skipped and counted in `summary`.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"corpus directory {str(root)!r} does not exist or is not a directory.")
    summary = summary if summary is not None else CorpusSummary()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in extensions:
            continue
        relative = path.relative_to(root).as_posix()
        if any(part in exclude_dirs for part in Path(relative).parts):
            continue
        summary.files_seen += 1
        if exclude_tests and is_test_path(relative):
            summary.skipped_tests += 1
            continue
        try:
            raw = path.read_bytes()
        except OSError:
            summary.skipped_unreadable += 1
            continue
        try:
            text = decode_text(raw)
        except NotText as err:
            setattr(summary, f"skipped_{err.kind}", getattr(summary, f"skipped_{err.kind}") + 1)
            continue
        if path.suffix == ".py" and not parses_as_python(text):
            summary.skipped_syntax += 1
            continue
        summary.files_used += 1
        yield relative, text


def parses_as_python(text: str) -> bool:
    """Whether `text` is a syntactically valid Python module for this interpreter (`ast.parse`)."""
    import ast
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes etc.: still a program
        try:
            ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


def split_program(text: str, tokenizer, budget: int) -> list[str]:
    """Split a program into pieces of at most `budget` tokens, at top-level definitions, never mid-line.

    Top-level units (a `def`/`class` with its decorators and body, or runs of other top-level code) are packed
    greedily; a unit longer than the budget is split at line boundaries; a single line longer than the budget is
    dropped (it cannot be kept whole).
    """
    lines = text.splitlines(keepends=True)
    units: list[list[str]] = []
    for line in lines:
        starts_unit = line.startswith(TOP_LEVEL_STARTS) and not (units and units[-1][-1].startswith("@"))
        if not units or starts_unit:
            units.append([line])
        else:
            units[-1].append(line)

    def count(s: str) -> int:
        return len(tokenizer(s, add_special_tokens=False)["input_ids"])

    pieces: list[str] = []
    current, current_len = "", 0
    for unit in units:
        unit_text = "".join(unit)
        unit_len = count(unit_text)
        if unit_len > budget:  # too long: fall back to whole lines
            if current:
                pieces.append(current)
                current, current_len = "", 0
            for line in unit:
                n = count(line)
                if n > budget:
                    continue
                if current_len + n > budget and current:
                    pieces.append(current)
                    current, current_len = "", 0
                current += line
                current_len += n
            continue
        if current_len + unit_len > budget and current:
            pieces.append(current)
            current, current_len = "", 0
        current += unit_text
        current_len += unit_len
    if current.strip():
        pieces.append(current)
    return [p for p in pieces if p.strip()]


def in_validation(key: str, validation_fraction: float) -> bool:
    """Deterministic split by hash: the same file is always on the same side."""
    digest = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16)
    return (digest % 10_000) < validation_fraction * 10_000


CORPUS_FILTERS_VERSION = 2  # 2: `.py` files that do not parse are skipped


@dataclass
class CorpusConfig:
    """Everything that determines a built corpus (and its cache key)."""

    source: str | None = None  # directory, data file(s), saved dataset or Hub id; None = the CPython standard library
    text_column: str = "text"
    dataset_config: str | None = None  # Hub dataset: configuration name
    data_dir: str | None = None  # Hub dataset: data_dir
    split: str | None = None  # dataset split to read (default: all splits)
    num_proc: int | None = None  # dataset sources: processes for the batched split + tokenise `map` (not in the key)
    max_length: int = 64  # tokens per example including BOS and EOS
    validation_fraction: float = 0.05
    extensions: tuple[str, ...] = (".py",)
    exclude_tests: bool = True
    max_programs: int | None = None

    def cache_key(self, tokenizer) -> str:
        fields = asdict(self)
        fields.pop("num_proc")  # how many processes built it does not change what was built
        fields["filters"] = CORPUS_FILTERS_VERSION  # a change of what is skipped is a new corpus
        fields["source"] = str(self.source or stdlib_dir())
        fields["tokenizer"] = hashlib.sha1(
            json.dumps(tokenizer.get_vocab(), sort_keys=True).encode("utf-8")
        ).hexdigest()[:16]
        return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def _data_files(source: Path) -> tuple[str, list[str]] | None:
    """`(builder, files)` when `source` is a data file or a folder of data files of one format, else None."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    by_builder: dict[str, list[str]] = {}
    for path in files:
        builder = DATA_FILE_BUILDERS.get(path.suffix)
        if builder is not None:
            by_builder.setdefault(builder, []).append(str(path))
    if not by_builder:
        return None
    if len(by_builder) > 1:
        raise ValueError(f"{source} mixes data file formats {sorted(by_builder)}; keep one format per corpus.")
    return next(iter(by_builder.items()))


def _is_saved_dataset(path: Path) -> bool:
    """A `save_to_disk` directory (a Dataset or a DatasetDict)."""
    return path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists())


def _check_text_column(columns: list[str] | None, config: CorpusConfig) -> None:
    if columns is not None and config.text_column not in columns:
        raise ValueError(f"dataset {config.source!r} has no column {config.text_column!r}; columns: {columns}.")


def program_examples(text: str, key: str, tokenizer, max_length: int) -> list[dict]:
    """One document → its examples: pieces of at most `max_length − 2` tokens (`split_program`), each as
    `{"input_ids": [BOS] piece [EOS], "text": piece, "path": key}`. The one place every corpus builder wraps programs."""
    pieces = split_program(text, tokenizer, max_length - 2)
    if not pieces:
        return []
    encoded = tokenizer(pieces, add_special_tokens=False)["input_ids"]
    return [
        {"input_ids": [tokenizer.bos_token_id, *ids, tokenizer.eos_token_id], "text": piece, "path": key}
        for piece, ids in zip(pieces, encoded)
    ]


def load_text_dataset(config: CorpusConfig, streaming: bool = False):
    """The `datasets` object behind a non-directory source: data file(s), a saved dataset or a Hub dataset
    (an `IterableDataset` with `streaming=True`: rows are read as they are consumed)."""
    from datasets import load_dataset

    source = Path(config.source)
    if _is_saved_dataset(source):
        dataset = load_from_disk(str(source))
        return dataset[config.split] if config.split and isinstance(dataset, DatasetDict) else dataset
    if source.exists():
        found = _data_files(source)
        if found is None and source.is_file():
            raise ValueError(
                f"{source} is one file; a corpus is a directory of source files (give the folder that holds it) or "
                "data file(s): .jsonl, .json, .parquet, .arrow or .csv."
            )
        if found is None:
            raise ValueError(f"{source} holds no .py, .jsonl, .json, .parquet, .arrow or .csv file.")
        builder, files = found
        return load_dataset(builder, data_files=files, split=config.split or "train", streaming=streaming)
    # A Hub dataset (gated ones, like bigcode/starcoderdata, need `hf auth login` first).
    return load_dataset(
        config.source, name=config.dataset_config, data_dir=config.data_dir, split=config.split, streaming=streaming
    )


_MIXED_WARNED: set[str] = set()


def _is_source_tree(config: CorpusConfig) -> bool:
    """Whether `config.source` is read as source files: the default, or a directory that is not a saved dataset and
    holds source files (`config.extensions`) or no data file. A package or repository with JSON / CSV files beside
    its code is a source tree (its data files are ignored, with a warning); only a directory of data files alone is a
    dataset."""
    if config.source is None:
        return True
    path = Path(config.source)
    if not path.is_dir() or _is_saved_dataset(path):
        return False
    files = [p for p in path.rglob("*") if p.is_file()]  # one walk: source files and data files
    data = sorted({p.suffix for p in files if p.suffix in DATA_FILE_BUILDERS})
    if not data:
        return True
    if not any(p.suffix in config.extensions for p in files):
        return False
    if str(path) not in _MIXED_WARNED:  # once per directory, however often a build asks
        _MIXED_WARNED.add(str(path))
        logger.warning(
            "%s holds source files (%s) and %d data file(s) (%s): reading the source files; pass a data file or a "
            "folder of data files alone as the source to read those instead.",
            path,
            ", ".join(config.extensions),
            sum(p.suffix in DATA_FILE_BUILDERS for p in files),
            ", ".join(data),
        )
    return True


def _source_documents(config: CorpusConfig, summary: CorpusSummary) -> Iterable[tuple[str, str]]:
    """`(key, text)` of every document: files of a source tree, or rows of a dataset source read as a stream."""
    source = config.source
    if _is_source_tree(config):
        yield from read_source_files(source or stdlib_dir(), config.extensions, config.exclude_tests, summary=summary)
        return
    dataset = load_text_dataset(config, streaming=True)
    splits = list(dataset.values()) if isinstance(dataset, dict) else [dataset]  # DatasetDict / IterableDatasetDict
    for split in splits:
        _check_text_column(split.column_names, config)
        # Row by row: a memory-mapped or streamed dataset is never copied into one Python list.
        texts = (row[config.text_column] for row in split.select_columns([config.text_column]))
        for i, text in enumerate(texts):
            summary.files_seen += 1
            if not isinstance(text, str) or not text.strip():
                summary.skipped_empty += 1
                continue
            summary.files_used += 1
            yield f"{source}#{i}", text


def _check_config(tokenizer, config: CorpusConfig) -> None:
    if config.max_length < 4:
        raise ValueError(f"`max_length` must be >= 4, got {config.max_length}.")
    if not 0 <= config.validation_fraction < 1:
        raise ValueError(f"`validation_fraction` must lie in [0, 1), got {config.validation_fraction}.")
    for name in ("bos_token_id", "eos_token_id"):
        if getattr(tokenizer, name, None) is None:
            raise ValueError(f"the tokenizer needs a `{name}` to wrap programs.")


def build_program_dataset(
    tokenizer,
    config: CorpusConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[DatasetDict, CorpusSummary]:
    """Build (or load from cache) a `DatasetDict` with `train` and `validation` splits of tokenised programs.

    Columns: `input_ids` (`[BOS] program [EOS]`, unpadded, at most `max_length` ids), `text`, `path`.

    Example:
        ```python
        >>> corpus, summary = build_program_dataset(tokenizer, CorpusConfig(max_length=64))
        >>> print(summary)
        ```
    """
    config = config or CorpusConfig()
    _check_config(tokenizer, config)
    cache_path = Path(cache_dir) / f"corpus-{config.cache_key(tokenizer)}" if cache_dir is not None else None
    if cache_path is not None and (cache_path / "dataset_dict.json").exists():
        summary = CorpusSummary(**json.loads((cache_path / "summary.json").read_text()))
        return load_from_disk(str(cache_path)), summary

    if not _is_source_tree(config):
        corpus, summary = _build_from_dataset(tokenizer, config)
        if cache_path is not None:
            corpus.save_to_disk(str(cache_path))
            (cache_path / "summary.json").write_text(json.dumps(asdict(summary)))
        return corpus, summary
    summary = CorpusSummary()
    rows = {"train": [], "validation": []}
    for key, text in _source_documents(config, summary):
        split = "validation" if in_validation(key, config.validation_fraction) else "train"
        rows[split].extend(program_examples(text, key, tokenizer, config.max_length))
        if config.max_programs is not None and sum(map(len, rows.values())) >= config.max_programs:
            break
    empty = {"input_ids": [], "text": [], "path": []}
    corpus = DatasetDict({split: Dataset.from_list(r) if r else Dataset.from_dict(empty) for split, r in rows.items()})
    summary.programs = {split: len(r) for split, r in rows.items()}
    summary.tokens = {split: sum(len(x["input_ids"]) for x in r) for split, r in rows.items()}
    if not rows["train"]:
        raise ValueError(f"no usable program found in {config.source or stdlib_dir()!s}: {summary}")
    logger.info("corpus: %s", summary)
    if cache_path is not None:
        corpus.save_to_disk(str(cache_path))
        (cache_path / "summary.json").write_text(json.dumps(asdict(summary)))
    return corpus, summary


def _pieces(batch: dict, indices: list[int], tokenizer, config: CorpusConfig) -> dict[str, list]:
    """Batched `map` function: documents → programs (split, tokenised, wrapped) with their split by path hash."""
    out = {"input_ids": [], "text": [], "path": [], "split": []}
    for index, text in zip(indices, batch[config.text_column]):
        if not isinstance(text, str) or not text.strip():
            continue
        key = f"{config.source}#{index}"
        split = "validation" if in_validation(key, config.validation_fraction) else "train"
        for example in program_examples(text, key, tokenizer, config.max_length):
            for column, value in example.items():
                out[column].append(value)
            out["split"].append(split)
    return out


def _count_tokens(dataset: Dataset) -> int:
    """Σ len(input_ids) in Arrow batches (never the whole column as Python lists)."""
    import pyarrow.compute as pc

    return sum(
        pc.sum(pc.list_value_length(batch["input_ids"])).as_py() or 0
        for batch in dataset.with_format("arrow").iter(batch_size=65536)
    )


def _build_from_dataset(tokenizer, config: CorpusConfig) -> tuple[DatasetDict, CorpusSummary]:
    """A data-file, saved or Hub source: one batched `map` (in `num_proc` processes) splits and tokenises every
    document into Arrow, never into Python lists; the split column then partitions it."""
    from datasets import concatenate_datasets

    dataset = load_text_dataset(config)
    parts = list(dataset.values()) if isinstance(dataset, DatasetDict) else [dataset]
    dataset = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    _check_text_column(dataset.column_names, config)
    dataset = dataset.select_columns([config.text_column])
    if config.max_programs is not None:
        dataset = dataset.select(range(min(len(dataset), config.max_programs)))
    programs = dataset.map(
        _pieces,
        batched=True,
        with_indices=True,
        remove_columns=[config.text_column],
        fn_kwargs={"tokenizer": tokenizer, "config": config},
        num_proc=config.num_proc,
        desc="splitting and tokenising",
    )
    used = dataset.filter(
        lambda batch: [isinstance(t, str) and bool(t.strip()) for t in batch[config.text_column]],
        batched=True,
        num_proc=config.num_proc,
    )
    splits = {name: programs.filter(lambda b, n=name: [s == n for s in b["split"]], batched=True) for name in
              ("train", "validation")}  # fmt: skip
    corpus = DatasetDict({name: part.remove_columns("split") for name, part in splits.items()})
    if config.max_programs is not None and sum(map(len, corpus.values())) > config.max_programs:
        corpus = DatasetDict({n: d.select(range(min(len(d), config.max_programs))) for n, d in corpus.items()})
    summary = CorpusSummary(files_seen=len(dataset), files_used=len(used), skipped_empty=len(dataset) - len(used))
    summary.programs = {name: len(part) for name, part in corpus.items()}
    summary.tokens = {name: _count_tokens(part) for name, part in corpus.items()}
    if not len(corpus["train"]):
        raise ValueError(f"no usable program found in {config.source}: {summary}")
    logger.info("corpus: %s", summary)
    return corpus, summary


def _program_rows(tokenizer, config: CorpusConfig, split: str) -> Iterable[dict]:
    """Examples of one split, produced lazily from the source (the generator behind `stream_program_dataset`)."""
    produced = 0
    for key, text in _source_documents(config, CorpusSummary()):
        if in_validation(key, config.validation_fraction) != (split == "validation"):
            continue
        for example in program_examples(text, key, tokenizer, config.max_length):
            yield example
            produced += 1
        if config.max_programs is not None and produced >= config.max_programs:
            return


def stream_program_dataset(tokenizer, config: CorpusConfig | None = None) -> dict:
    """`train` and `validation` as `datasets.IterableDataset`s built on the fly: sources are read, split and
    tokenised as the trainer consumes them, so memory stays flat however large the corpus (`streaming: true`).
    Examples are the same as `build_program_dataset`'s, in source order.

    Example:
        ```python
        >>> splits = stream_program_dataset(tokenizer, CorpusConfig(source="data/", max_length=257))
        >>> next(iter(splits["train"]))["input_ids"][:3]
        ```
    """
    from datasets import Features, IterableDataset, List, Value

    config = config or CorpusConfig()
    _check_config(tokenizer, config)
    features = Features({"input_ids": List(Value("int32")), "text": Value("string"), "path": Value("string")})
    return {
        split: IterableDataset.from_generator(
            _program_rows, gen_kwargs={"tokenizer": tokenizer, "config": config, "split": split}, features=features
        )
        for split in ("train", "validation")
    }


__all__ = [
    "CorpusConfig",
    "CorpusSummary",
    "build_program_dataset",
    "program_examples",
    "stream_program_dataset",
    "in_validation",
    "read_source_files",
    "split_program",
    "stdlib_dir",
]
