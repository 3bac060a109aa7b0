"""Campaigns: long load-and-fault runs, their data files, reports and charts."""
