"""Training, evaluation and data generation for CCExpert."""
