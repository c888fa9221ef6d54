# Databricks notebook source
print("vacuum")
