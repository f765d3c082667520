"""The store's own knowledge: regional return policies, languages and regions, personal
data masking, and the one prompt builder every face uses."""
