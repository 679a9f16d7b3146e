"A Keras callback the throughput benchmarks share: the wall seconds of each epoch."
import time

import keras


class EpochTimes(keras.callbacks.Callback):
    "Wall seconds of each epoch, in `seconds`."
    def on_train_begin(self, logs=None): self.seconds = []
    def on_epoch_begin(self, epoch, logs=None): self.start = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): self.seconds.append(time.perf_counter() - self.start)
