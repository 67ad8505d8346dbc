"""The model core: configuration, backbones, the CNN+RNN builder, the streaming stepper, data and
training. It sits below ``converters`` (which quantize and export what it builds) and above
``runtimes`` (which it uses to decode clips and hash files); it never imports ``converters``,
the CLI or the benchmark. Importing it is cheap: TensorFlow loads inside the functions that
build or train a model.
"""
