"""kefu: an open-source customer-service chatbot (Rasa + fine-tuned transformers + FAISS)."""

__version__ = "0.1.0"
