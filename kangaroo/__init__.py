"""kangaroo-flow: training system for Kangaroo, a long-context video-language model.

The library never imports kfp: `components/` wrap it for Kubeflow, `dvc.yaml` and the CLI call it directly.
"""

__version__ = "0.1.0"
