"""Tasks: one package per use of the engine (char-LM, studies, tagging, forecasting, anomaly detection).

Each task package holds its data handling, model, metrics and command line, and plugs into the one
training loop in :mod:`rnnlab.train` through a task object. The engine (module, cells, layers,
fast kernels, optim, gradcheck) knows nothing of tasks.
"""
