"""The RNN family: a recurrent classifier (GRU or LSTM, train_rnn.cell) reading each image row
by row, a sequence of `height` steps of `width × channels` pixels.

Kept by validation accuracy, scored by test accuracy with the CNN's metric keys, drawn in
`gt_vs_pr.png` and `confusion_matrix.png`, and served as a `classifier` with a drift reference,
as the CNN is. Its `FAMILY` is in `family`.
"""
