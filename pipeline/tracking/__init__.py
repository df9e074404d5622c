"""Recording runs in MLflow: what a run says about itself, what it trained on, the model it logs, promotion.

- `run`: a tracked training run (`train_tracked`), the path every entry point that trains takes;
- `tags`: parameters as resolved, software versions, processor, commit;
- `lineage`: the datasets as MLflow inputs, and which validation images a run used;
- `logged_model`: calibration, and the networks logged as the served model with only `pipeline/serving`;
- `promotion`: which registered version serves in Production.

It may import `serving`, `data`, `training` and `analysis`; none of them imports it.
"""
