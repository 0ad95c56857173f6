"""The CRoCoDiL demo as a Hugging Face Space (`sdk: gradio`, `app_file: app.py`): the same app as `crocodil demo`, on
the shipped crocodil-python-tiny. The Space's requirements.txt installs this package with its demo extra
(`crocodil_hf[demo]`). Locally: `python app.py` serves it on http://127.0.0.1:7860."""

from crocodil_hf.demo import build_demo, launch

demo = build_demo("crocodil-python-tiny")

if __name__ == "__main__":
    launch(demo)
