"""Responsible-AI probes: paraphrase for the datasets' perturbations, bias and injection probes, explanations."""
