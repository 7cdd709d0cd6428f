"""Screening and active learning: figures of merit with ensemble uncertainty, acquisition rules,
out-of-distribution flags, the ranking of uncomputed candidates and the rounds that feed DFT.

``merit``        figures of merit of log10 alpha spectra (onset, log10 alpha at an energy, a window's
                 mean, SLME), per member, with the ensemble's mean and sigma
``acquisition``  greedy, ucb, uncertainty and random scores, and the ranking order
``ood``          the nearest learned cluster (Ward clusters of a layer's features) and the
                 out-of-distribution flag
``settings``     :class:`ScreenSettings` (config section ``screen``)
``rank``         the ranking table and the shortlist with why each was picked
``stage``        the screen stage's entry points (candidates, graphs, ranking, summary) and ``optabs screen``
``rounds``       active-learning rounds in the workflow: a round's dataset, training and ranking
``simulate``     active-learning simulations on a database with known answers (benchmarks)
"""
