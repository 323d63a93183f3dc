class LancasterStemmer:
    def stem(self, word):
        raise NotImplementedError("nltk is not available in the parity harness")
