"""Chapter 10 (robustness): the analyses (``analyses``), one function per section
(``chapter``, ``sections``), training dynamics, fine-tuning, the geographic split, the
paper's side of each comparison (``paper``) and the figures (``plots``)."""
